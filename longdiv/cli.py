"""The command line: `python -m longdiv fit|validate|test|predict --config configs/<experiment>.yaml`.

A `fit` also tests the fitted model (unless `--test_after_fit false`) and prints the test accuracy with its 95%
interval. Every run gets its own folder under `runs/` (longdiv/runs.py names and creates it), printed when the run
starts and when it ends, holding the saved config, checkpoints, `run.json` and, after a test, `predictions.jsonl`.
`main(args)` returns that folder.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import yaml
from jsonargparse import ArgumentError
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningCLI

from longdiv import errors, runs
from longdiv.callbacks.checkpoint import AtomicCheckpointIO, LastCheckpoint, RandomState
from longdiv.callbacks.progress import LogProgress
from longdiv.callbacks.records import RunRecord
from longdiv.callbacks.samples import SampleTable
from longdiv.data.datamodule import DivisionData
from longdiv.models.module import DivisionLM

# Set by the launching process to the run folder it created, so that the processes DDP starts join it.
RUN_DIR_ENV = "LONGDIV_RUN_DIR"
# The shared recipe, loaded as defaults under every --config. Found next to the package, not in the working folder.
BASE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "base.yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")


def tokenizer_name(model: str, tokenizer: str | None) -> str:
    return tokenizer or model


def wandb_offline() -> bool:
    """W&B syncs only when the user gave it a key or asked for online mode; otherwise it logs offline, so a run
    never waits on a login prompt or the network. `WANDB_MODE=offline` keeps it offline even with a key, and
    `WANDB_MODE=disabled` is left to W&B."""
    mode = os.environ.get("WANDB_MODE")
    if mode in ("offline", "dryrun", "online", "disabled"):
        return mode in ("offline", "dryrun")
    return not os.environ.get("WANDB_API_KEY")


class WorkStarted(Callback):
    """Tells longdiv.errors when the first loop starts: a ValueError before then is bad input, after it a bug."""

    def on_train_start(self, trainer, pl_module):
        errors.work_started()

    on_validation_start = on_test_start = on_predict_start = on_train_start


class LongDivCLI(LightningCLI):
    created: Path | None = None  # the run folder this process created, if it created one

    def add_arguments_to_parser(self, parser):
        parser.link_arguments("data.format", "model.format")
        parser.link_arguments(("model.model", "model.tokenizer"), "data.tokenizer_name", compute_fn=tokenizer_name)
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Test the model when fit ends.")
        parser.add_argument("--runs_dir", type=str, default="runs", help="Folder that holds one folder per run.")
        parser.add_argument("--checkpoint_every_n_steps", type=int | None, default=None,
                            help="Also save checkpoints/last.ckpt every this many optimizer steps, so that a killed "
                            "run resumes mid-epoch; by default it is saved at epoch ends.")
        parser.add_argument("--num_samples", type=int, default=8,
                            help="Generations per evaluation in the sample table (file and W&B); 0 for none.")
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
        ckpt = cfg.get("ckpt_path")
        if ckpt == "last" and cfg.trainer.default_root_dir is None:
            raise ValueError("ckpt_path 'last' needs the run to resume: pass --ckpt_path "
                             "runs/<run>/checkpoints/last.ckpt, or add --trainer.default_root_dir runs/<run>")
        if self.subcommand == "fit" and ckpt and Path(ckpt).parent.name == "checkpoints":
            # Resuming a fit continues its run folder, which holds the checkpoint.
            cfg.trainer.default_root_dir = cfg.trainer.default_root_dir or str(Path(ckpt).parent.parent)
        if "weights_only" in cfg and cfg.weights_only is None:
            # A checkpoint holds tensors and plain settings: refuse any that would run code when loaded.
            cfg.weights_only = True
        launcher = os.environ.get("LOCAL_RANK", "0") == "0"  # not a process that DDP started
        if cfg.trainer.default_root_dir is None:
            run_dir = None if launcher else os.environ.get(RUN_DIR_ENV)
            if run_dir is None:
                self.created = runs.new_folder(cfg.runs_dir, self.subcommand, cfg.model.model, cfg.data.format,
                                               cfg.data.num_demos)
                run_dir = str(self.created)
                os.environ[RUN_DIR_ENV] = run_dir
            cfg.trainer.default_root_dir = run_dir
        if launcher:
            print(f"run folder: {cfg.trainer.default_root_dir}", flush=True)
        logger = cfg.trainer.logger
        if logger and not isinstance(logger, bool) and logger.class_path.endswith("WandbLogger"):
            logger.init_args.save_dir = cfg.trainer.default_root_dir
            if wandb_offline():
                logger.init_args.offline = True

    def instantiate_classes(self):
        try:
            super().instantiate_classes()
        except BaseException:
            # A run that fails to start leaves no empty folder behind.
            if self.created is not None and not any(self.created.iterdir()):
                self.created.rmdir()
            raise

    def instantiate_trainer(self, **kwargs):
        cfg = self.config[self.subcommand]
        callbacks = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        callbacks = [*callbacks, RunRecord(config=self.config_dict()), SampleTable(cfg.num_samples),
                     LogProgress(every_n_steps=cfg.trainer.log_every_n_steps or 50), WorkStarted()]
        if cfg.trainer.enable_checkpointing is not False:
            callbacks += [LastCheckpoint(Path(cfg.trainer.default_root_dir) / "checkpoints",
                                         cfg.checkpoint_every_n_steps), RandomState()]
        plugins = self._get(self.config_init, "trainer", default={}).get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins = [*plugins, AtomicCheckpointIO()]
        return super().instantiate_trainer(callbacks=callbacks, plugins=plugins, **kwargs)

    def _parse_ckpt_path(self):
        # LightningCLI reads the model's settings from --ckpt_path with weights_only=True; say what a refusal means.
        try:
            with errors.reading_checkpoint(self.config[self.config.subcommand].get("ckpt_path")):
                super()._parse_ckpt_path()
        except pickle.UnpicklingError as err:
            path = self.config[self.config.subcommand].get("ckpt_path")
            reason = str(err).split("WeightsUnpickler error: ")[-1].split(" was not an allowed")[0].split("\n")[0]
            raise ValueError(
                f"ckpt_path {path}: refused, loading it would run code ({reason}). A longdiv checkpoint holds only "
                "tensors and plain settings; pass a checkpoint that longdiv wrote"
            ) from None

    def config_dict(self) -> dict:
        """The resolved config of this run as plain data, for the run record."""
        return json.loads(self._parser(self.subcommand).dump(self.config[self.subcommand], format="json"))

    def after_fit(self):
        if self.config.fit.test_after_fit and not self.trainer.fast_dev_run:
            self.trainer.test(self.model, datamodule=self.datamodule)
        self.report()

    def after_validate(self):
        self.report()

    def after_test(self):
        self.report()

    def report(self):
        """Prints the test result, when the run has one, and the run folder, as the run ends."""
        if not self.trainer.is_global_zero:
            return
        record = next(c for c in self.trainer.callbacks if isinstance(c, RunRecord)).record
        if runs.is_tested(record):
            print(
                f"\ntest accuracy {record['accuracy']:.1%} ({record['correct']}/{record['n_eval']}), 95% interval "
                f"[{record['wilson_low']:.1%}, {record['wilson_high']:.1%}], parse failures {record['parse_failures']}"
            )
        print(f"run folder: {self.trainer.default_root_dir}", flush=True)


def check_config_files(args: list[str]) -> None:
    """Reads every `--config` YAML on the command line, so that a syntax error names its file: the parser's own
    message names none."""
    for flag, value in zip(args, args[1:] + [""]):
        path = value if flag in ("-c", "--config") else flag.split("=", 1)[1] if flag.startswith("--config=") else ""
        if not path or not Path(path).is_file():
            continue  # the parser says what is missing
        try:
            with open(path) as f:
                yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise errors.UsageError("config", f"--config {path}", errors.yaml_problem(err),
                                    "fix the YAML syntax there") from None


def main(args: list[str] | None = None) -> Path:
    """Runs the command line on `args` (default: sys.argv) and returns the run's folder. Bad input raises
    `longdiv.errors.UsageError` (a ValueError), the parser's complaints included."""
    argv = sys.argv[1:] if args is None else args
    check_config_files(argv)
    # The parser raises its complaints rather than printing its usage text, so that they come out as one line.
    kwargs = {"default_config_files": [str(BASE_CONFIG)], "exit_on_error": False}
    try:
        cli = LongDivCLI(DivisionLM, DivisionData, args=args, save_config_kwargs={"overwrite": True},
                         parser_kwargs={"exit_on_error": False, **{name: kwargs for name in SUBCOMMANDS}})
    except ArgumentError as err:
        command = f"python -m longdiv {argv[0] if argv and argv[0] in SUBCOMMANDS else ''}".rstrip()
        raise errors.UsageError("command line", command, " ".join(str(err).split()), f"see {command} --help") from None
    return Path(cli.config[cli.subcommand].trainer.default_root_dir)
