"""Progress lines for logs: under nohup, in CI and in cloud job logs the progress bar writes nothing readable, so a
fit or test would otherwise be silent between the model summary and its result."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import lightning as L
import torch


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LogProgress(L.Callback):
    """The CLI adds it to every run, printing training lines every `--trainer.log_every_n_steps` steps.

    Prints a line every `every_n_steps` optimizer steps (step, mean loss since the last line, training tokens/s,
    elapsed, ETA) and every `every_n_batches` evaluation batches (batch, problems done, elapsed, ETA), when the
    output is not a terminal (`always` prints on a terminal too). Only the first process prints.

    Args:
        every_n_steps: Optimizer steps between training lines.
        every_n_batches: Evaluation batches between evaluation lines.
        always: Print even when the output is a terminal, where the progress bar already shows progress.
        stream: Where lines go; standard output by default.
    """

    def __init__(self, every_n_steps: int = 5, every_n_batches: int = 2, always: bool = False,
                 stream: TextIO | None = None):
        if every_n_steps < 1 or every_n_batches < 1:
            raise ValueError(f"every_n_steps ({every_n_steps}) and every_n_batches ({every_n_batches}) must be >= 1")
        self.every_n_steps, self.every_n_batches, self.always = every_n_steps, every_n_batches, always
        self.stream = stream
        self._losses: list[torch.Tensor] = []
        self._tokens = 0
        self._start = self._since = 0.0
        self._first_step = self._last_line_step = 0
        self._eval_start = 0.0
        self._problems = 0

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def _enabled(self, trainer) -> bool:
        return trainer.is_global_zero and (self.always or not self._out().isatty())

    def _print(self, line: str) -> None:
        print(line, file=self._out(), flush=True)

    def on_train_start(self, trainer, pl_module):
        self._start = self._since = time.perf_counter()
        # A resumed fit's rate counts only the steps this process makes.
        self._first_step = self._last_line_step = trainer.global_step
        self._losses, self._tokens = [], 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self._enabled(trainer):
            return
        # Kept as tensors until a line is printed: reading them every micro-batch would wait for a GPU each time.
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:  # Lightning hands over the loss divided by the accumulation count
            self._losses.append(loss.detach() * trainer.accumulate_grad_batches)
        self._tokens = self._tokens + batch["attention_mask"].sum()
        step = trainer.global_step
        # global_step counts optimizer steps: print on the micro-batch that completed a multiple of n, once
        if step % self.every_n_steps or step == self._last_line_step:
            return
        self._last_line_step = step
        now = time.perf_counter()
        total = trainer.estimated_stepping_batches
        elapsed = now - self._start
        rate = (step - self._first_step) / elapsed
        eta = (total - step) / rate if rate > 0 and total != float("inf") else None
        loss = float(torch.stack(self._losses).float().mean()) if self._losses else float("nan")
        self._print(f"step {step}/{total} loss {loss:.4f} {int(self._tokens) / (now - self._since):.0f} tokens/s "
                    f"elapsed {_clock(elapsed)} eta {_clock(eta)}")
        self._losses, self._tokens, self._since = [], 0, now

    def _reset_eval(self) -> None:
        self._eval_start, self._problems = time.perf_counter(), 0

    def _eval_batch_end(self, trainer, batch, batch_idx: int, stage: str, batches) -> None:
        if not self._enabled(trainer) or trainer.sanity_checking:
            return
        self._problems += len(batch["input_ids"])
        done = batch_idx + 1
        total = batches[0] if isinstance(batches, list) else batches
        if done % self.every_n_batches and done != total:
            return
        elapsed = time.perf_counter() - self._eval_start
        eta = elapsed / done * (total - done) if total != float("inf") else None
        self._print(f"{stage} batch {done}/{total} ({self._problems} problems) elapsed {_clock(elapsed)} "
                    f"eta {_clock(eta)}")

    def on_validation_epoch_start(self, trainer, pl_module):
        self._reset_eval()

    def on_test_epoch_start(self, trainer, pl_module):
        self._reset_eval()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._eval_batch_end(trainer, batch, batch_idx, "val", trainer.num_val_batches)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._eval_batch_end(trainer, batch, batch_idx, "test", trainer.num_test_batches)
