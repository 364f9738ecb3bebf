"""The runner the experiments share: one run per (format, demo count, training seed) of the offline SmolLM2 on the
main recipe (configs/smollm2.yaml), tested on 500 generated interpolate problems and on the paper's 100 validation
problems, and the record the reports hold for it.

A point lives in `runs/formats/smollm2-<format>-n<N>-s<seed>[-<overlay>]/` (named by longdiv/runs.py): the fit and
its 500-problem test there, the paper test in its `paper_val/` subfolder. An overlay is a config composed after the
main one (`overlays/fixed-steps`: a fixed number of optimizer steps whatever N). The seed is the training seed,
which orders the demonstrations. A point whose records are complete is not run again, so the scripts resume and
share runs: the best format at N=200 is a point of both experiments.formats and experiments.demos.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from longdiv import runs
from longdiv.data.verify import KINDS

RUNS = runs.root() / "formats"
CONFIG = "configs/smollm2.yaml"
PAPER_VAL = "data/paper/validation_numbers__div_remainder.txt"


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """A script's own arguments, and the CLI arguments after `--` that every run gets."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def folder(fmt: str, num_demos: int, seed: int, overlay: str | None = None) -> Path:
    """The point's run folder. `overlay` is a config under configs/ without its `.yaml` (`recipes/lr6e-4`),
    composed after the main one; the folder is named by its last part."""
    point = {"model.model": "smollm2", "data.format": fmt, "data.num_demos": num_demos, "seed_everything": seed}
    return RUNS / runs.point_name(point | ({"config": f"configs/{overlay}.yaml"} if overlay else {}))


def cli(args: list[str]) -> None:
    command = [sys.executable, "-m", "longdiv", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def finished(fmt: str, num_demos: int, seed: int, overlay: str | None = None) -> bool:
    path = folder(fmt, num_demos, seed, overlay)
    return runs.tested(path) is not None and runs.tested(path / "paper_val") is not None


def run(fmt: str, num_demos: int, seed: int, overlay: str | None = None, extra: list[str] = ()) -> dict:
    """Fits and tests one point unless its records exist, then returns its report record."""
    path = folder(fmt, num_demos, seed, overlay)
    point = ["--config", CONFIG, *(["--config", f"configs/{overlay}.yaml"] if overlay else []),
             f"--data.format={fmt}", f"--data.num_demos={num_demos}"]
    if runs.tested(path) is None:
        cli(["fit", *point, f"--seed_everything={seed}", f"--trainer.default_root_dir={path}", *extra])
    ckpt = path / "checkpoints" / "last.ckpt"
    if runs.tested(path / "paper_val") is None and ckpt.is_file():
        cli(["test", *point, f"--data.test_file={PAPER_VAL}", f"--ckpt_path={ckpt}",
             f"--trainer.default_root_dir={path / 'paper_val'}", *extra])
    elif runs.tested(path / "paper_val") is None:
        # A run made elsewhere (experiments.gpu brings back records, not checkpoints): no paper test here.
        print(f"{path}: no checkpoint here, so no paper test", flush=True)
    return record(path)


def record(path: Path, fit: runs.Record | None = None) -> dict:
    """The report record of the point in `path`: the test figures and what the fit cost, then the paper-validation
    figures. `fit` is the point's tested run record when it is not `path`'s own."""
    fit, paper = fit or runs.tested(path), runs.tested(path / "paper_val")
    steps, micro_batches = optimizer_steps(fit["config"])
    trained_tokens = fit["mean_tokens"] * fit["config"]["data"]["batch_size"] * micro_batches
    # a fit resumed before records carried the time up to their checkpoint timed only its last part
    partial = fit.get("checkpoint", {}).get("use") == "resumed" and "fit_seconds_before_resume" not in fit
    return {
        "format": fit["format"],
        "num_demos": fit["num_demos"],
        "seed": fit["config"]["seed_everything"],
        "n_eval": fit["n_eval"],
        "correct": fit["correct"],
        "accuracy": fit["accuracy"],
        "wilson_low": fit["wilson_low"],
        "wilson_high": fit["wilson_high"],
        "parse_failures": fit["parse_failures"],
        "error_kinds": {kind: int(fit["metrics"].get(f"test/err_{kind}", 0)) for kind in KINDS},
        "mean_tokens": round(fit["mean_tokens"], 1),
        "max_tokens": fit["max_tokens"],
        "fit_seconds": fit["fit_seconds"],
        **({"fit_seconds_partial": True} if partial else {}),
        "eval_seconds": fit["eval_seconds"],
        "train_tokens_per_second": None if partial else round(trained_tokens / fit["fit_seconds"], 1),
        "optimizer_steps": steps,
        "epochs": round(micro_batches * fit["config"]["data"]["batch_size"] / fit["num_demos"], 2),
        "paper_val": {
            "n_eval": paper["n_eval"], "correct": paper["correct"], "accuracy": paper["accuracy"],
            "wilson_low": paper["wilson_low"], "wilson_high": paper["wilson_high"],
            "parse_failures": paper["parse_failures"],
        } if paper else None,
        # Where and how it was trained: records from before run.json named the device were all made on this CPU.
        "device": fit.get("device", "cpu (not recorded)"),
        # what training computed in (model.precision resolved); older records knew only the trainer's setting
        "precision": fit["precision"]["train"] if "precision" in fit else fit["config"]["trainer"]["precision"],
        "batch": f"{fit['config']['data']['batch_size']}x{fit['config']['trainer']['accumulate_grad_batches']}",
        "run_dir": str(path),
        "data_hash": fit["data_hash"],
        "git_commit": fit["git_commit"],
    }


def optimizer_steps(config: dict) -> tuple[int, int]:
    """The optimizer steps and training micro-batches of a fit with this resolved config: `max_steps` when set,
    else `max_epochs` whole epochs; an epoch's last step takes the micro-batches left over."""
    trainer, data = config["trainer"], config["data"]
    batches = math.ceil(data["num_demos"] / data["batch_size"])
    per_epoch = math.ceil(batches / trainer["accumulate_grad_batches"])
    steps = trainer["max_steps"] if trainer["max_steps"] > 0 else per_epoch * trainer["max_epochs"]
    epochs, rest = divmod(steps, per_epoch)
    return steps, epochs * batches + rest * trainer["accumulate_grad_batches"]


def update_report(path: Path, new: list[dict], key: Callable[[dict], object], **fields) -> list[dict]:
    """Adds `new` records to the report at `path`: the records already there stay (their runs may be gone from this
    checkout) unless a new record has the same `key`, which replaces them. `fields` (a question, a command) are
    written beside the records. Written through a temporary file and a rename, so a report is never half written.
    Returns every record."""
    replaced = {key(record) for record in new}
    earlier = json.loads(path.read_text())["records"] if path.is_file() else []
    records = [record for record in earlier if key(record) not in replaced] + new
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({**fields, "records": records}, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return records
