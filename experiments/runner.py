"""The library the experiments share: run a point, find a config by name, write a report.

A point is one run of the offline SmolLM2 on the main recipe (configs/smollm2.yaml) per (format, demo count, training
seed), tested on 500 generated interpolate problems and on the paper's 100 validation problems. It lives in
`runs/formats/smollm2-<format>-n<N>-s<seed>[-<overlay>]/` (named by longdiv/runs.py): the fit and its 500-problem test
there, the paper test in its `paper_val/` subfolder. An overlay is a config composed after the main one
(`overlays/fixed-steps`: a fixed number of optimizer steps whatever N). The seed is the training seed, which orders the
demonstrations. A point whose records are complete is not run again, so the scripts resume and share runs: the best
format at N=200 is a point of both experiments.formats and experiments.demos.

A point's record is the row `longdiv report` makes of its run (longdiv.report.row) with its paper test's figures on
top; every report is written through `update_report`, which merges by key and never leaves a report half written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from longdiv import report, runs

ROOT = Path(__file__).resolve().parent.parent  # configs/ is read from here, whatever the current folder
RUNS = runs.root() / "formats"
CONFIG = "configs/smollm2.yaml"
# The paper's files: the defaults of configs/base.yaml, the paper's recipe.
PAPER_TRAIN, PAPER_VAL = (yaml.safe_load((ROOT / "configs/base.yaml").read_text())["data"][key]
                          for key in ("train_file", "val_file"))
optimizer_steps = report.optimizer_steps


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """A script's own arguments, and the CLI arguments after `--` that every run gets."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def configs(group: str) -> dict[str, str]:
    """The configs of a group of configs/ by name (file stem), each as the path the CLI takes from the repository
    root: `configs("ideas")["coverage"] == "configs/ideas/coverage.yaml"`."""
    return {path.stem: f"configs/{group}/{path.name}" for path in sorted((ROOT / "configs" / group).glob("*.yaml"))}


def reason(config: str) -> str:
    """What a config changes and why: its leading comment."""
    lines = (ROOT / config).read_text().splitlines()
    comment = [line.lstrip("# ")
               for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]]
    return " ".join(comment)


def folder(fmt: str, num_demos: int, seed: int, overlay: str | None = None) -> Path:
    """The point's run folder. `overlay` is a config under configs/ without its `.yaml` (`recipes/lr6e-4`),
    composed after the main one; the folder is named by its last part."""
    point = {"model.model": "smollm2", "data.format": fmt, "data.num_demos": num_demos, "seed_everything": seed}
    return RUNS / runs.point_name(point | ({"config": f"configs/{overlay}.yaml"} if overlay else {}))


def commands(path: Path, fmt: str, num_demos: int, seed: int, overlay: str | None = None,
             recipe: list[str] = ()) -> tuple[list[str], list[str]]:
    """A point's two CLI commands: its `fit` into `path`, and the `test` of its checkpoint on the paper's validation
    problems into `path`/paper_val. `recipe`: arguments both take (experiments.gpu's GPU recipe)."""
    point = ["--config", CONFIG, *(["--config", f"configs/{overlay}.yaml"] if overlay else []),
             f"--data.format={fmt}", f"--data.num_demos={num_demos}", *recipe]
    return (["fit", *point, f"--seed_everything={seed}", f"--trainer.default_root_dir={path}"],
            ["test", *point, f"--data.test_file={PAPER_VAL}", f"--ckpt_path={path / 'checkpoints' / 'last.ckpt'}",
             f"--trainer.default_root_dir={path / 'paper_val'}"])


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
    fit, paper = commands(path, fmt, num_demos, seed, overlay)
    if runs.tested(path) is None:
        cli([*fit, *extra])
    if runs.tested(path / "paper_val") is None and (path / "checkpoints" / "last.ckpt").is_file():
        cli([*paper, *extra])
    elif runs.tested(path / "paper_val") is None:
        # A run made elsewhere (experiments.gpu brings back records, not checkpoints): no paper test here.
        print(f"{path}: no checkpoint here, so no paper test", flush=True)
    return record(path)


def record(path: Path, fit: runs.Record | None = None) -> dict:
    """The report record of the point in `path`: its row (longdiv.report.row), then the paper-validation figures.
    `fit` is the point's tested run record when it is not `path`'s own."""
    paper = runs.tested(path / "paper_val")
    return report.row(path, fit) | {"paper_val": {
        key: paper[key] for key in ("n_eval", "correct", "accuracy", "wilson_low", "wilson_high", "parse_failures")
    } if paper else None}


def read_report(path: Path) -> dict:
    """A committed report, or an empty one when there is none yet."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_report(path: Path, content: dict) -> None:
    """Writes a report through a temporary file and a rename, so a report is never half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(content, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def update_report(path: Path, new: list[dict], key: Callable[[dict], object], under: str = "records",
                  **fields) -> list[dict]:
    """Adds `new` records to the list `under` of the report at `path`: the records already there stay (their runs
    may be gone from this checkout) unless a new record has the same `key`, which replaces them. `fields` (a
    question, a command) are written beside the records; the report's other fields stay. Returns every record."""
    earlier = read_report(path)
    replaced = {key(record) for record in new}
    records = [record for record in earlier.get(under, []) if key(record) not in replaced] + new
    write_report(path, {**earlier, **fields, under: records})
    return records
