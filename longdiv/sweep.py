"""Runs a W&B grid sweep locally, without W&B: `python -m longdiv sweep configs/sweeps/demos.yaml [filters]`.

Each grid point runs the command that `wandb agent` would run for it (the sweep's `command` with `${args}` as
`--key=value` per parameter), in a subprocess, writing to its own folder `<runs_dir>/<point name>/`, named by every
parameter of the point (longdiv/runs.py). A point whose folder already holds a tested run is skipped, so an
interrupted grid resumes where it stopped:

    python -m longdiv sweep configs/sweeps/demos.yaml --num_demos 25 50 --models smollm2 --formats subrow direct
    python -m longdiv sweep configs/sweeps/demos.yaml --dry_run              # print the commands only
    python -m longdiv sweep configs/sweeps/demos.yaml -- --trainer.max_epochs=1   # extra CLI arguments per run
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from longdiv import errors, runs

# Filters a user types, and the sweep parameters they select on.
FILTERS = {"num_demos": "data.num_demos", "models": "model.model", "formats": "data.format", "seeds": "seed_everything"}


def grid(sweep: dict) -> list[dict[str, Any]]:
    """Every point of a grid sweep, in the order of its parameters (the first varies slowest)."""
    if sweep.get("method") != "grid":
        raise ValueError(f"sweep method is {sweep.get('method')!r}; only `method: grid` sweeps run locally")
    if not isinstance(sweep.get("parameters"), dict) or not sweep["parameters"]:
        raise ValueError("the sweep has no `parameters` mapping; add one, each parameter with `values` or `value`")
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
    macros = {"env": ["/usr/bin/env"], "interpreter": [python], "program": [sweep["program"]],
              "args": agent_args(point)}
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


def status(folder: Path, dry_run: bool) -> str:
    """What the runner does with the point in `folder`: skip it once its run is tested, else run it (or print it).
    A damaged record is said and run over."""
    try:
        if runs.tested(folder) is not None:
            return "done, skipped"
    except ValueError as err:
        print(err, flush=True)
    return "dry run" if dry_run else "running"


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


def load(path: Path) -> dict:
    """The sweep YAML at `path` as a mapping; a missing file or one that is not YAML is a UsageError naming it."""
    try:
        sweep = yaml.safe_load(path.read_text())
    except OSError as err:
        raise errors.UsageError("sweep", path, err.strerror or str(err),
                                "pass a sweep YAML such as configs/sweeps/demos.yaml") from None
    except yaml.YAMLError as err:
        raise errors.UsageError("sweep", path, errors.yaml_problem(err), "fix the YAML syntax there") from None
    if not isinstance(sweep, dict):
        raise errors.UsageError("sweep", path, f"holds a {type(sweep).__name__}, not a mapping",
                                "write a W&B sweep config: `method: grid`, `program`, `command` and `parameters`")
    if "program" not in sweep:
        raise errors.UsageError("sweep", path, "names no `program`", "add `program: longdiv` (what wandb agent runs, "
                                "as in configs/sweeps/demos.yaml)")
    return sweep


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = errors.ArgumentParser(prog="python -m longdiv sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="A W&B sweep YAML with `method: grid`.")
    parser.add_argument("--runs_dir", type=Path, default=None,
                        help="One folder per point here; default <$LONGDIV_RUNS or runs>/ablation.")
    for option, key in FILTERS.items():
        parser.add_argument(f"--{option}", nargs="+", help=f"Run only these {key} values.")
    parser.add_argument("--dry_run", action="store_true", help="Print the commands without running them.")
    args = parser.parse_args(argv)
    args.runs_dir = args.runs_dir or runs.root() / "ablation"
    sweep = load(args.sweep)
    try:
        points = grid(sweep)
    except ValueError as err:
        raise errors.UsageError("sweep", args.sweep, str(err)) from None
    try:
        points = select(points, {option: getattr(args, option) for option in FILTERS})
    except ValueError as err:
        parser.error(str(err))
    failed = []
    for number, point in enumerate(points, start=1):
        name = runs.point_name(point)
        folder = args.runs_dir / name
        command = agent_command(sweep, point, python=sys.executable)
        command += [f"--runs_dir={args.runs_dir}", f"--trainer.default_root_dir={folder}", *extra]
        todo = status(folder, args.dry_run)
        print(f"[{number}/{len(points)}] {name}: {todo}\n  {' '.join(command)}", flush=True)
        if todo == "running" and subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"{len(failed)} of {len(points)} points failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
