"""The command line: `python -m longdiv fit|validate|test|predict --config configs/<experiment>.yaml`.

A `fit` also tests the fitted model (unless `--test_after_fit false`) and prints the test accuracy with its 95%
interval. Every run gets its own folder under `runs/` (longdiv/runs.py names and creates it), printed when the run
starts and when it ends, holding the saved config, checkpoints, `run.json` and, after a test, `predictions.jsonl`.
`main(args)` returns that folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml
from jsonargparse import ArgumentError, Namespace
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningCLI

from longdiv import errors, identity, runs
from longdiv.callbacks.checkpoint import AtomicCheckpointIO, LastCheckpoint, RandomState
from longdiv.callbacks.progress import LogProgress
from longdiv.callbacks.records import RunRecord
from longdiv.callbacks.samples import SampleTable
from longdiv.data.datamodule import NO_QUESTIONS, DivisionData
from longdiv.models.module import DivisionLM

# Set by the launching process to the run folder it created, so that the processes DDP starts join it.
RUN_DIR_ENV = "LONGDIV_RUN_DIR"
# The shared recipe, loaded as defaults under every --config. Found next to the package, not in the working folder.
BASE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "base.yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
def wandb_offline() -> bool:
    """W&B syncs where it can without asking: with a key in `WANDB_API_KEY`, with the key `wandb login` saved in
    netrc for W&B's server (`WANDB_BASE_URL`, else W&B's default), and in a run that `wandb agent` started (it sets
    `WANDB_SWEEP_ID`; the sweep needs the run's metric). Otherwise it logs offline, so a run never waits on a login
    prompt. An explicit `WANDB_MODE` wins: `offline` keeps it offline even with a key, and `disabled` is left to W&B."""
    mode = os.environ.get("WANDB_MODE")
    if mode in ("offline", "dryrun", "online", "disabled"):
        return mode in ("offline", "dryrun")
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_SWEEP_ID"):
        return False
    import wandb
    from wandb.sdk.lib.wbauth import read_netrc_auth

    # W&B's own netrc reader, with the machine names its `wandb login` writes; no network. Not wandb's global
    # settings: loading them now would make wandb.init ignore the WANDB_MODE that WandbLogger sets when offline.
    return read_netrc_auth(host=os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url) is None


class WorkStarted(Callback):
    """Tells longdiv.errors when the first loop starts: a ValueError before then is bad input, after it a bug."""

    def on_train_start(self, trainer, pl_module):
        errors.work_started()

    on_validation_start = on_test_start = on_predict_start = on_train_start


class LongDivCLI(LightningCLI):
    created: Path | None = None  # the run folder this process created, if it created one
    made: Path | None = None  # the same, kept on the class for `main` when the constructor fails
    held: int | None = None  # the run folder's lock (`runs.hold`), let go by `main` when the command ends
    checkpoint: dict | None = None  # what --ckpt_path or --init_from holds and how this run used it (run.json)
    _trained_on: tuple | list = ()  # the (dividend, divisor) keys of that checkpoint's training problems

    def add_arguments_to_parser(self, parser):
        parser.link_arguments("data.format", "model.format")
        parser.link_arguments(("model.model", "model.tokenizer"), "data.tokenizer_name",
                              compute_fn=identity.tokenizer_name)
        # The model's window, read off the loaded model (config_overrides may change it): data.context defaults to it.
        parser.link_arguments("model.window", "data.max_length", apply_on="instantiate")
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Test the model when fit ends.")
        parser.add_argument("--runs_dir", type=str | None, default=None,
                            help=f"Folder that holds one folder per run; default ${runs.RUNS_ENV}, else runs.")
        parser.add_argument("--checkpoint_every_n_steps", type=int | None, default=None,
                            help="Also save checkpoints/last.ckpt every this many optimizer steps, so that a killed "
                            "run resumes mid-epoch; by default it is saved at epoch ends.")
        parser.add_argument("--num_samples", type=int, default=8,
                            help="Generations per evaluation in the sample table (file and W&B); 0 for none.")
        parser.add_argument("--init_from", type=str | None, default=None,
                            help="fit only: a checkpoint whose model weights start a new run (its own folder, a new "
                            "optimizer, step 0); unlike --ckpt_path, which resumes that same run.")
        parser.add_argument("--allow_format_change", type=bool, default=False,
                            help="Evaluate a checkpoint in a data.format other than the one it was trained on, on "
                            "purpose; without it that is an error.")
        parser.set_defaults(
            {
                "trainer.logger": {
                    "class_path": "longdiv.logger.WandbLogger",
                    "init_args": {"project": "longdiv"},
                },
                # The DataModule shards data across processes itself: evaluation without padding, so that every
                # problem counts once, and training in length buckets.
                "trainer.use_distributed_sampler": False,
            }
        )

    def before_instantiate_classes(self):
        cfg = self.config[self.subcommand]
        ckpt = cfg.get("ckpt_path")  # `last` is a path by now (identity.from_checkpoint)
        if self.subcommand == "fit" and ckpt and Path(ckpt).parent.name == "checkpoints":
            # Resuming a fit continues its run folder, which holds the checkpoint, and no other run's.
            own, given = Path(ckpt).parent.parent, cfg.trainer.default_root_dir
            if given is not None and Path(given).resolve() != own.resolve():
                raise ValueError(f"ckpt_path {ckpt} is a checkpoint of the run in {own}, not of "
                                 f"trainer.default_root_dir {given}: resume it in its own folder (leave out "
                                 "--trainer.default_root_dir), or start a new run from its weights with --init_from")
            cfg.trainer.default_root_dir = str(own)
        if "weights_only" in cfg and cfg.weights_only is None:
            # A checkpoint holds tensors and plain settings: refuse any that would run code when loaded.
            cfg.weights_only = True
        if self.subcommand == "predict" and not (cfg.data.predict_file or cfg.data.test_file):
            raise ValueError(NO_QUESTIONS)  # before the trainer starts talking
        launcher = os.environ.get("LOCAL_RANK", "0") == "0"  # not a process that DDP started
        if cfg.trainer.default_root_dir is None:
            run_dir = None if launcher else os.environ.get(RUN_DIR_ENV)
            if run_dir is None:
                n = identity.trained(self.checkpoint, num_demos=cfg.data.num_demos)["num_demos"]  # the weights' N
                self.created = runs.new_folder(cfg.runs_dir or runs.root(), self.subcommand, cfg.model.model,
                                               cfg.data.format, n)
                LongDivCLI.made = self.created
                run_dir = str(self.created)
                os.environ[RUN_DIR_ENV] = run_dir
            cfg.trainer.default_root_dir = run_dir
        if launcher:
            LongDivCLI.held = runs.hold(cfg.trainer.default_root_dir)  # one process in a run folder at a time
            print(f"run folder: {cfg.trainer.default_root_dir}", flush=True)
        logger = cfg.trainer.logger
        if logger and not isinstance(logger, bool) and logger.class_path.endswith("WandbLogger"):
            logger.init_args.save_dir = cfg.trainer.default_root_dir
            if wandb_offline():
                logger.init_args.offline = True

    def instantiate_trainer(self, **kwargs):
        cfg = self.config[self.subcommand]
        given = self.config_init[self.subcommand].get("trainer") or {}
        callbacks = given.get("callbacks") or []
        callbacks = [*callbacks, RunRecord(config=self.config_dict(), checkpoint=self.checkpoint),
                     SampleTable(cfg.num_samples),
                     LogProgress(every_n_steps=cfg.trainer.log_every_n_steps or 50), WorkStarted()]
        if cfg.trainer.enable_checkpointing is not False:
            callbacks += [LastCheckpoint(Path(cfg.trainer.default_root_dir) / "checkpoints",
                                         cfg.checkpoint_every_n_steps), RandomState()]
        plugins = given.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins = [*plugins, AtomicCheckpointIO()]
        return super().instantiate_trainer(callbacks=callbacks, plugins=plugins, **kwargs)

    def parse_arguments(self, parser, args):
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if not sub:
            return

        def parse(under: Namespace) -> Namespace:  # the user's input again, over a checkpoint's settings
            if isinstance(args, dict | Namespace):
                return parser.parse_object(args, namespace=under)
            return parser.parse_args(args, namespace=under)

        self.config, self.checkpoint, self._trained_on = identity.from_checkpoint(sub, self.config, parse)

    def _parse_ckpt_path(self):
        """Off: LightningCLI's own reading of --ckpt_path puts the checkpoint's model settings over the ones typed
        (and none of its data settings); `parse_arguments` reads it instead (identity.from_checkpoint). Lightning
        2.6 has no public hook for this (its pull request 21408 proposes one)."""

    def after_instantiate_classes(self):
        if self.checkpoint is None:
            return
        # The checkpoint's weights saw these problems: evaluation here leaves them out, whatever the data settings.
        evaluated = runs.evaluated(self.checkpoint) and bool(self._trained_on)
        self.datamodule.hold_out(self._trained_on, draw=not evaluated)
        if self.checkpoint["use"] == "initialized":
            self.model.load_state_dict(identity.weights(self.checkpoint["path"]))

    def config_dict(self) -> dict:
        """The resolved config of this run as plain data, for the run record."""
        return json.loads(self.parser.dump(self.config, format="json"))[self.subcommand]

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
    LongDivCLI.made = None
    try:
        cli = LongDivCLI(DivisionLM, DivisionData, args=args, save_config_kwargs={"overwrite": True},
                         parser_kwargs={"exit_on_error": False, **{name: kwargs for name in SUBCOMMANDS}})
    except ArgumentError as err:
        command = f"python -m longdiv {argv[0] if argv and argv[0] in SUBCOMMANDS else ''}".rstrip()
        raise errors.UsageError("command line", command, " ".join(str(err).split()), f"see {command} --help") from None
    except BaseException:
        if not errors.started():  # a run that fails before its loops start leaves no folder behind
            runs.discard_unstarted(LongDivCLI.made)
        raise
    finally:
        runs.release(LongDivCLI.held)
        LongDivCLI.held = None
    return Path(cli.config[cli.subcommand].trainer.default_root_dir)
