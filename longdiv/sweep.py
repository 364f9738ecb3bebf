"""Runs a W&B grid sweep locally, without W&B: `python -m longdiv sweep configs/sweeps/demos.yaml [filters]`.

Each grid point runs the command that `wandb agent` would run for it (the sweep's `command` with `${args}` as
`--key=value` per parameter), in a subprocess, writing to its own folder `<runs_dir>/<point name>/`. A point whose
folder already holds a tested `run.json` is skipped, so an interrupted grid resumes where it stopped:

    python -m longdiv sweep configs/sweeps/demos.yaml --num_demos 25 50 --models smollm2 --formats subrow direct
    python -m longdiv sweep configs/sweeps/demos.yaml --dry_run              # print the commands only
    python -m longdiv sweep configs/sweeps/demos.yaml -- --trainer.max_epochs=1   # extra CLI arguments per run
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

# Filters a user types, and the sweep parameters they select on.
FILTERS = {"num_demos": "data.num_demos", "models": "model.model", "formats": "data.format", "seeds": "seed_everything"}


def grid(sweep: dict) -> list[dict[str, Any]]:
    """Every point of a grid sweep, in the order of its parameters (the first varies slowest)."""
    if sweep.get("method") != "grid":
        raise ValueError(f"sweep method is {sweep.get('method')!r}; only `method: grid` sweeps run locally")
    keys, choices = [], []
    for key, spec in sweep["parameters"].items():
        if "values" in spec:
            choices.append(list(spec["values"]))
        elif "value" in spec:
            choices.append([spec["value"]])
        else:
            raise ValueError(f"sweep parameter {key!r} has neither `values` nor `value`; a grid needs one of them")
        keys.append(key)
    return [dict(zip(keys, combo)) for combo in itertools.product(*choices)]


def agent_args(point: dict[str, Any]) -> list[str]:
    """`${args}` as `wandb agent` renders it: `--key=value`, the value formatted by Python's str()."""
    return [f"--{key}={value}" for key, value in point.items()]


def agent_command(sweep: dict, point: dict[str, Any], python: str = "python") -> list[str]:
    """The command `wandb agent` runs for `point`: macros `${env}`, `${interpreter}`, `${program}` and `${args}`
    replaced; `python` replaces the literal `python` so a local run uses the running interpreter."""
    macros = {"env": ["/usr/bin/env"], "interpreter": [python], "program": [sweep["program"]], "args": agent_args(point)}
    command = []
    for part in sweep.get("command", ["${env}", "${interpreter}", "${program}", "${args}"]):
        part = str(part)
        if part.startswith("${") and part.endswith("}"):
            if part[2:-1] not in macros:
                raise ValueError(f"sweep command macro {part} is not supported locally; use {sorted(macros)}")
            command += macros[part[2:-1]]
        else:
            command.append(python if part == "python" else part)
    return command


def point_name(point: dict[str, Any]) -> str:
    """A folder name that says which point a run is, e.g. `smollm2-sub-n25-s0`."""
    name = f"{point.get('model.model', 'model')}-{point.get('data.format', 'fmt')}-n{point.get('data.num_demos', 'x')}"
    name += f"-s{point.get('seed_everything', 'x')}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def done(folder: Path) -> bool:
    """Whether the run in `folder` got as far as its test."""
    path = folder / "run.json"
    if not path.is_file():
        return False
    try:
        return "accuracy" in json.loads(path.read_text())
    except json.JSONDecodeError:
        return False


def select(points: list[dict[str, Any]], filters: dict[str, list[str] | None]) -> list[dict[str, Any]]:
    """The points whose values pass every filter; values compare as strings. A filter value that no point has
    is an error, since it is almost always a typo."""
    problems = []
    for option, values in filters.items():
        if values is None:
            continue
        key = FILTERS[option]
        known = list(dict.fromkeys(str(p.get(key)) for p in points))
        unknown = [v for v in values if v not in known]
        if unknown:
            problems.append(f"--{option} {' '.join(unknown)}: not among the sweep's {key} values {', '.join(known)}")
    for option, values in filters.items():
        if values is not None:
            points = [p for p in points if str(p.get(FILTERS[option])) in values]
    if problems:
        raise ValueError("; ".join(problems))
    return points


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m longdiv sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="A W&B sweep YAML with `method: grid`.")
    parser.add_argument("--runs_dir", type=Path, default=Path("runs/ablation"), help="One folder per point here.")
    for option, key in FILTERS.items():
        parser.add_argument(f"--{option}", nargs="+", help=f"Run only these {key} values.")
    parser.add_argument("--dry_run", action="store_true", help="Print the commands without running them.")
    args = parser.parse_args(argv)
    sweep = yaml.safe_load(args.sweep.read_text())
    try:
        points = select(grid(sweep), {option: getattr(args, option) for option in FILTERS})
    except ValueError as err:
        parser.error(str(err))
    failed = []
    for number, point in enumerate(points, start=1):
        folder = args.runs_dir / point_name(point)
        command = agent_command(sweep, point, python=sys.executable)
        command += [f"--runs_dir={args.runs_dir}", f"--trainer.default_root_dir={folder}", *extra]
        status = "done, skipped" if done(folder) else "dry run" if args.dry_run else "running"
        print(f"[{number}/{len(points)}] {point_name(point)}: {status}\n  {' '.join(command)}", flush=True)
        if status == "running" and subprocess.run(command, check=False).returncode != 0:
            failed.append(point_name(point))
    if failed:
        print(f"{len(failed)} of {len(points)} points failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
