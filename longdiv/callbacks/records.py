"""Writes what a run did into its run folder: per-problem predictions and its record (longdiv/runs.py)."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from longdiv import hardware, identity, runs
from longdiv.stats import wilson

PARTIAL = "predictions.partial-{rank}.jsonl"  # a test's records so far, one line per batch, kept until it ends
PACKAGES = ("torch", "lightning", "transformers", "torchmetrics", "jsonargparse", "wandb", "mathematics-dataset")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent, check=False)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def peak_rss_gb() -> float:
    """The most resident memory this process has held so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


class RunRecord(L.Callback):
    """Times fit and test, writes `predictions.jsonl` after test and predict, `run.json` after fit and test, and
    each validation's records during fit to `validations/step-<optimizer step>.jsonl`.

    During fit it keeps the learning curve, `history`: one entry per training epoch with the optimizer steps and
    training tokens (all ranks') so far, its mean training loss (over micro-batches) and the validation metrics when
    the epoch validated, rewritten to `history.json` in the run folder at every epoch end (so a curve is readable
    while a long fit runs) and stored in the record. The checkpoints carry it, so a resumed fit continues the same
    curve. They also carry `segments`: one entry per process that trained the run (its device, the precision it
    trained in, the optimizer steps it took from and to, its seconds, when it started), each brought up to date at
    every checkpoint, so a process that was stopped counts up to its last checkpoint and the steps it lost are
    counted again by the process that redid them.

    Args:
        config: The resolved run config (a plain dict), stored in the record; the CLI passes it.
        checkpoint: The checkpoint the run resumed, evaluated or started from (`--ckpt_path`, `--init_from`): its
            path, use, model, format, N, data seed and hash, and the settings this run used in place of the saved
            ones (`changed`); the CLI passes it. An evaluated checkpoint's N is the record's `num_demos`.
    """

    def __init__(self, config: dict | None = None, checkpoint: dict | None = None):
        self.config = config or {}
        self.checkpoint = checkpoint
        self.record: runs.Record = {}
        self._start = 0.0
        self._fit_start = 0.0
        self._fit_before = 0.0  # fit seconds spent before the checkpoint this fit resumed from
        self._peak_before = 0.0  # the highest resident memory of the processes that trained the run before this one
        self.history: list[dict] = []
        self.segments: list[dict] = []
        self._segment: dict | None = None  # this process's entry of `segments` while it trains
        self._trainer = None
        self._loss = [0.0, 0]  # this epoch's training loss: sum over micro-batches, count
        self._tokens = 0  # training tokens (prompt and completion, no padding) this process's rank has trained on
        self._partial = None  # this process's file of the test's records so far, open while it tests
        self._fitted = False  # this process ran a fit (its test, if any, is the fit's own)

    def _folder(self, trainer) -> Path:
        folder = Path(trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _fit_seconds(self) -> float:
        return self._fit_before + time.perf_counter() - self._fit_start

    def state_dict(self) -> dict:
        """Saved in every checkpoint: the run's config (a resume compares its training settings with it), the
        curve, the segments, the peak memory and tokens so far, and the fit time up to it, so that a fit resumed
        from it (in another process, another session) records the whole fit, not its last part. Time spent after
        the checkpoint by a process that was then stopped is lost work and is not counted."""
        self._update_segment()
        return {"fit_seconds": self._fit_seconds(), "history": self.history, "epoch_loss": list(self._loss),
                "segments": self.segments, "fit_peak_rss_gb": self._peak(),
                "tokens": self._tokens, "config": self.training_config()}

    def training_config(self) -> dict:
        """The run's settings outside the model and data (seed, trainer), which a resume compares with its own: the
        checkpoint holds the model's and data's settings once, as Lightning's hyperparameters."""
        return {k: v for k, v in self.config.items() if k not in ("model", "data")}

    def load_state_dict(self, state_dict: dict) -> None:
        self._fit_before = float(state_dict.get("fit_seconds", 0.0))
        self.history = list(state_dict.get("history", []))
        self.segments = [dict(s) for s in state_dict.get("segments", [])]
        self._peak_before = float(state_dict.get("fit_peak_rss_gb", 0.0))
        self._tokens = int(state_dict.get("tokens", 0))
        self._loss = list(state_dict.get("epoch_loss", [0.0, 0]))

    def _entry(self, trainer) -> dict:
        if not self.history or self.history[-1]["epoch"] != trainer.current_epoch:
            self.history.append({"epoch": trainer.current_epoch})
        return self.history[-1]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # Lightning hands over the loss divided by the accumulation count, as it was back-propagated.
        self._loss[0] += float(outputs["loss"]) * trainer.accumulate_grad_batches
        self._loss[1] += 1
        self._tokens += int(batch["attention_mask"].sum())

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self._entry(trainer).update(
            {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")})
        # Each problem's record at this point of the curve, for error analyses of a run while it trains.
        records = sorted(runs.gather(pl_module.records), key=lambda r: r["index"])
        if trainer.is_global_zero:
            path = self._folder(trainer) / "validations" / f"step-{trainer.global_step:06d}.jsonl"
            path.parent.mkdir(exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in records))

    def on_train_epoch_end(self, trainer, pl_module):
        entry = self._entry(trainer)
        entry |= {"step": trainer.global_step, "tokens": sum(runs.gather([self._tokens])),
                  "train_loss": self._loss[0] / max(1, self._loss[1]),
                  "fit_seconds": round(self._fit_seconds(), 1)}
        self._loss = [0.0, 0]
        if trainer.is_global_zero:
            path = self._folder(trainer) / "history.json"
            path.write_text(json.dumps(self.history, indent=1) + "\n")

    def _peak(self) -> float:
        return max(self._peak_before, peak_rss_gb())

    def _resume(self, folder: Path) -> str:
        """The command that resumes the fit in `folder` from its last checkpoint; a run begun with --init_from adds
        `--init_from null` (its config.yaml names that checkpoint, and --ckpt_path resumes the run's own)."""
        return (f"python -m longdiv fit --config {folder / 'config.yaml'} --ckpt_path "
                f"{folder / 'checkpoints' / 'last.ckpt'}{' --init_from null' if self.config.get('init_from') else ''}")

    def on_fit_start(self, trainer, pl_module):
        self._fit_start = time.perf_counter()
        self._fitted = True

    def on_train_start(self, trainer, pl_module):
        # Here the checkpoint is restored: global_step is where this process starts.
        machine = pl_module.machine or hardware.machine(trainer.strategy.root_device)
        self._trainer, self._segment_start = trainer, time.perf_counter()
        # cpu_id: a cloud CPU's name may be one for two kinds of machine; its family, model and stepping are not
        self._segment = {"device": f"{machine.device}: {machine.model}", "cpu_id": machine.cpu_id,
                         "devices": trainer.world_size, "allocator": hardware.allocator(),
                         "precision": getattr(pl_module, "compute", {}).get("train"),
                         "from_step": trainer.global_step, "to_step": trainer.global_step, "seconds": 0.0,
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        before = self.segments[-1].get("precision") if self.segments else None
        if before and before != self._segment["precision"]:
            # The weights and optimizer are fp32 in every precision, so the run goes on; but its numbers are no
            # longer those an uninterrupted run would have (`precision auto` resolves per machine).
            rank_zero_warn(f"this run trained in {before} before step {trainer.global_step} and goes on in "
                           f"{self._segment['precision']} here ({machine.device}: {machine.model}, {machine.cpu_id}); "
                           "pass --model.precision to keep one")
        self.segments.append(self._segment)
        if trainer.global_step and trainer.is_global_zero:
            # A resumed run's earlier test describes the weights it had then: kept, under the step they were at.
            folder = self._folder(trainer)
            for path in [folder / "predictions.jsonl", *folder.glob("samples-test-*.jsonl")]:
                if path.is_file():
                    path.rename(path.with_name(f"{path.stem}-before-step{trainer.global_step}{path.suffix}"))
            # part of an interrupted test of those weights: the test after this fit is of others, and starts afresh
            for path in folder.glob(PARTIAL.format(rank="*")):
                path.unlink()

    def _update_segment(self) -> None:
        if self._segment is not None:
            self._segment["to_step"] = self._trainer.global_step
            self._segment["seconds"] = round(time.perf_counter() - self._segment_start, 2)

    def on_fit_end(self, trainer, pl_module):
        self._update_segment()
        self.record["segments"] = self.segments
        self.record["fit_seconds"] = round(self._fit_seconds(), 1)
        if self._fit_before:
            self.record["fit_seconds_before_resume"] = round(self._fit_before, 1)
        self.record["fit_peak_rss_gb"] = self._peak()
        self.record["history"] = self.history
        self._write(trainer, pl_module, "fit")

    def on_exception(self, trainer, pl_module, exception):
        """A fit stopped by Ctrl-C or SIGTERM (a preemptible machine's notice, `kill`) records what it did and says
        how to resume: from the last checkpoint, which holds everything up to its step (what came after it is lost
        work)."""
        stopped = isinstance(exception, KeyboardInterrupt | SIGTERMException)
        if trainer.state.fn == "test" and self._partial is not None:
            self._partial.close()  # what it decoded stays: the same test run again into this folder goes on from it
            if stopped and trainer.is_global_zero:
                folder = self._folder(trainer)
                # a fit's own test goes on when the fit is resumed (it has nothing left to train, then tests)
                again = (self._resume(folder) if self._fitted
                         else f"python -m longdiv test --config {folder / 'config.yaml'}")
                print(f"test interrupted after {len(pl_module.records)} of "
                      f"{len(trainer.datamodule.eval_examples['test'])} "
                      f"problems; continue it with: {again}", file=sys.stderr, flush=True)
        if not stopped or trainer.state.fn != "fit" or self._segment is None:
            return
        self._update_segment()
        self.record |= {"segments": self.segments, "history": self.history, "fit_peak_rss_gb": self._peak(),
                        "interrupted_at_step": trainer.global_step}
        self._write(trainer, pl_module, "interrupted")
        if trainer.is_global_zero:
            folder = self._folder(trainer)
            print(f"interrupted at optimizer step {trainer.global_step}; resume from its last checkpoint with: "
                  f"{self._resume(folder)}", file=sys.stderr, flush=True)

    def on_test_start(self, trainer, pl_module):
        """Reads back what an interrupted test of the same weights, problems and settings in this folder decoded
        (its `predictions.partial-<rank>.jsonl` files), so that it is not decoded again, and starts this process's
        own file: each batch's records are appended to it as the batch ends."""
        self._start = time.perf_counter()
        folder, key = self._folder(trainer), self._test_key(trainer, pl_module)
        own = folder / PARTIAL.format(rank=trainer.global_rank)
        done, kept, self._earlier = {}, [], 0.0
        for path in sorted(folder.glob(PARTIAL.format(rank="*"))):
            lines = path.read_text().splitlines()
            if lines and json.loads(lines[0]).get("key") != key:
                raise ValueError(f"{path} holds part of a test of other weights, problems or settings than this "
                                 f"one; delete it to test from the start, or test into another folder")
            for line in lines[1:]:
                try:
                    batch = json.loads(line)
                except json.JSONDecodeError:  # the batch being written when the process was killed
                    continue
                done |= {r["index"]: r for r in batch["records"]}
                self._earlier += batch["seconds"]
                if path == own:
                    kept.append(line)
        pl_module.done, self._resumed = done, len(done)
        own.write_text("".join(line + "\n" for line in [json.dumps({"key": key}), *kept]))
        self._partial, self._batch_start = own.open("a"), time.perf_counter()

    def _test_key(self, trainer, pl_module) -> dict:
        """What a test's records depend on: the weights (an evaluated checkpoint's file and step, or this fit's
        step), the problems, how they are shared out and batched, and the module's settings."""
        weights = ({k: self.checkpoint.get(k) for k in ("path", "step", "data_hash")}
                   if runs.evaluated(self.checkpoint)
                   else {"fit_step": trainer.global_step})
        data = trainer.datamodule
        key = {"weights": weights, "data_hash": data.hash, "eval_batch_size": data.hparams.eval_batch_size,
               "world_size": trainer.world_size, "model": dict(pl_module.hparams), "decode": pl_module.compute}
        return json.loads(json.dumps(key, default=str))

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._batch_start = time.perf_counter()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not pl_module.restored(batch["index"].tolist()):
            seconds = round(time.perf_counter() - self._batch_start, 3)
            self._partial.write(json.dumps({"seconds": seconds, "records": outputs}) + "\n")
            self._partial.flush()
            os.fsync(self._partial.fileno())

    def on_test_end(self, trainer, pl_module):
        self._partial.close()
        self.record["eval_seconds"] = round(time.perf_counter() - self._start + self._earlier, 1)
        if self._resumed:
            self.record["test_resumed"] = self._resumed  # problems an interrupted test had decoded, read back
        records = self._write_predictions(trainer, pl_module)
        (self._folder(trainer) / PARTIAL.format(rank=trainer.global_rank)).unlink()
        correct = sum(r["correct"] for r in records)
        low, high = wilson(correct, len(records))
        self.record |= {
            "accuracy": correct / max(1, len(records)), "correct": correct, "n_eval": len(records), "wilson_low": low,
            "wilson_high": high, "parse_failures": sum(r["parsed"] is None for r in records),
        }
        self._write(trainer, pl_module, "test")

    def on_predict_end(self, trainer, pl_module):
        path = self._folder(trainer) / "predictions.jsonl"
        records = self._write_predictions(trainer, pl_module)
        if trainer.is_global_zero:
            print(f"{len(records)} predictions ({sum(r['correct'] for r in records)} right): {path}", flush=True)

    def _write_predictions(self, trainer, pl_module) -> list[dict]:
        """Every process's records, in evaluation-set order, written to `predictions.jsonl` by rank zero."""
        records = sorted(runs.gather(pl_module.records), key=lambda r: r["index"])
        if trainer.is_global_zero:
            with (self._folder(trainer) / "predictions.jsonl").open("w") as f:
                for r in records:
                    f.write(json.dumps(r) + "\n")
        return records

    def _write(self, trainer, pl_module, stage: str) -> None:
        data = trainer.datamodule
        machine = pl_module.machine or hardware.machine(trainer.strategy.root_device)
        lengths = [len(e) for e in data.demos]
        self.record |= {
            "stage": stage,
            "format": data.format.name,
            # the weights' N and data hash: an evaluated checkpoint's, not those of the data settings used here
            **identity.trained(self.checkpoint, num_demos=len(data.demos), data_hash=data.hash),
            "context": data.context,
            "train_windows": len(data.train_examples),  # num_demos when every demonstration fits the context
            "self_traces": len(data.self_examples),  # the model's own right traces trained on (self-training)
            "data_seed": data.hparams.data_seed,
            "order_seed": data.order_seed(),
            "removed_overlap": data.removed_overlap,
            "n_val": len(data.eval_examples.get("val", [])),
            "n_test": len(data.eval_examples.get("test", [])),
            "mean_tokens": sum(lengths) / max(1, len(lengths)),
            "max_tokens": max(lengths, default=0),
            "model": pl_module.hparams.model,
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "versions": versions(),
            "device": f"{machine.device}: {machine.model}",
            # What the machine offers and what the run computed in (model.precision resolved by the module).
            "machine": machine.as_dict(),
            "precision": {"setting": pl_module.hparams.precision, **pl_module.compute},
            "git_commit": git_commit(),
            "config": self.config,
            "run_dir": str(self._folder(trainer)),
        }
        if self.checkpoint is not None:
            self.record["checkpoint"] = self.checkpoint
        if runs.evaluated(self.checkpoint):
            self.record["eval_hash"] = data.hash  # the evaluation problems' (with no training draw here)
            if not data.demos:
                self.record |= {"train_windows": None, "mean_tokens": None, "max_tokens": None}
        if trainer.is_global_zero:
            runs.write(self._folder(trainer), self.record)
