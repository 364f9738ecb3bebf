"""The command line: `python -m longdiv fit|validate|test|predict --config configs/<experiment>.yaml`.

A `fit` also tests the fitted model (unless `--test_after_fit false`) and prints the test accuracy with its 95%
interval and the run folder. Every run gets its own folder under `runs/` holding the saved config, checkpoints,
`run.json` and, after a test, `predictions.jsonl`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from longdiv.callbacks.records import RunRecord
from longdiv.data.datamodule import DivisionData
from longdiv.models.module import DivisionLM

RUN_DIR_ENV = "LONGDIV_RUN_DIR"  # shared with the processes that DDP starts, so that all ranks use one folder


def tokenizer_name(model: str, tokenizer: str | None) -> str:
    return tokenizer or model


def wandb_offline() -> bool:
    """W&B syncs only when the user gave it a key or asked for online mode; otherwise it logs offline, so a run
    never waits on a login prompt or the network."""
    return not os.environ.get("WANDB_API_KEY") and os.environ.get("WANDB_MODE") != "online"


class LongDivCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        parser.link_arguments("data.format", "model.format")
        parser.link_arguments(("model.model", "model.tokenizer"), "data.tokenizer_name", compute_fn=tokenizer_name)
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Test the model when fit ends.")
        parser.add_argument("--runs_dir", type=str, default="runs", help="Folder that holds one folder per run.")
        parser.set_defaults(
            {
                "trainer.logger": {
                    "class_path": "lightning.pytorch.loggers.WandbLogger",
                    "init_args": {"project": "longdiv"},
                },
                # The DataModule shards data across processes itself: evaluation without padding, so that every
                # problem counts once, and training in length buckets.
                "trainer.use_distributed_sampler": False,
            }
        )

    def before_instantiate_classes(self):
        cfg = self.config[self.subcommand]
        if cfg.trainer.default_root_dir is None:
            # Processes that DDP starts (LOCAL_RANK > 0) join the folder their launcher chose.
            run_dir = os.environ.get(RUN_DIR_ENV) if os.environ.get("LOCAL_RANK", "0") != "0" else None
            if run_dir is None:
                name = f"{cfg.model.model.replace('/', '_').replace(':', '_')}-{cfg.data.format}-n{cfg.data.num_demos}"
                run_dir = str(Path(cfg.runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.subcommand}-{name}")
                os.environ[RUN_DIR_ENV] = run_dir
            cfg.trainer.default_root_dir = run_dir
        logger = cfg.trainer.logger
        if logger and not isinstance(logger, bool) and logger.class_path.endswith("WandbLogger"):
            logger.init_args.save_dir = cfg.trainer.default_root_dir
            if wandb_offline():
                logger.init_args.offline = True

    def instantiate_trainer(self, **kwargs):
        cfg = self.config[self.subcommand]
        callbacks = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        callbacks = [*callbacks, RunRecord(config=self.config_dict())]
        if cfg.trainer.enable_checkpointing is not False:
            callbacks.append(ModelCheckpoint(dirpath=Path(cfg.trainer.default_root_dir) / "checkpoints",
                                             save_last=True, save_top_k=0))
        return super().instantiate_trainer(callbacks=callbacks, **kwargs)

    def config_dict(self) -> dict:
        """The resolved config of this run as plain data, for the run record."""
        return json.loads(self._parser(self.subcommand).dump(self.config[self.subcommand], format="json"))

    def after_fit(self):
        if self.config.fit.test_after_fit and not self.trainer.fast_dev_run:
            self.trainer.test(self.model, datamodule=self.datamodule)
            self.report()

    def after_test(self):
        self.report()

    def report(self):
        record = next(c for c in self.trainer.callbacks if isinstance(c, RunRecord)).record
        if self.trainer.is_global_zero and "accuracy" in record:
            print(
                f"\ntest accuracy {record['accuracy']:.1%} ({record['correct']}/{record['n_eval']}), 95% interval "
                f"[{record['wilson_low']:.1%}, {record['wilson_high']:.1%}], parse failures "
                f"{record['parse_failures']}\nrun folder: {self.trainer.default_root_dir}"
            )


def main(args=None):
    LongDivCLI(DivisionLM, DivisionData, args=args, save_config_kwargs={"overwrite": True})
