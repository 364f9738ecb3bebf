"""A table of sample generations after each validation and test, to read what the model writes."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from longdiv import runs

COLUMNS = ("index", "question", "expected", "parsed", "correct", "error_kind", "error_step", "generated")


class SampleTable(L.Callback):
    """Writes the first `num_samples` evaluation problems (by index, so the same problems every epoch) with their
    generation, parsed answer, verdict and the verifier's first wrong step to `samples-<stage>-epoch<k>.jsonl` in
    the run folder, and to W&B as a table `<stage>/samples` when the logger is a WandbLogger.

    Args:
        num_samples: Problems per table; 0 writes none.
    """

    def __init__(self, num_samples: int = 8):
        if num_samples < 0:
            raise ValueError(f"num_samples is {num_samples}; use 0 for no sample tables or a positive count")
        self.num_samples = num_samples

    def _write(self, trainer, pl_module, stage: str) -> None:
        if self.num_samples == 0 or trainer.sanity_checking:
            return
        # The first problems overall are among each process's own first ones: gather only those.
        first = sorted(pl_module.records, key=lambda r: r["index"])[: self.num_samples]
        records = sorted(runs.gather(first), key=lambda r: r["index"])[: self.num_samples]
        if not trainer.is_global_zero or not records:
            return
        rows = [{c: r.get(c) for c in COLUMNS} for r in records]
        path = Path(trainer.default_root_dir) / f"samples-{stage}-epoch{trainer.current_epoch}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key=f"{stage}/samples", columns=list(COLUMNS),
                                 data=[[row[c] for c in COLUMNS] for row in rows], step=trainer.global_step)

    def on_validation_epoch_end(self, trainer, pl_module):
        self._write(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module):
        self._write(trainer, pl_module, "test")
