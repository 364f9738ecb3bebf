"""Run folders and the record each one holds: the one place that names and creates them, reads and writes their
`run.json`, and says whether a run got as far as its test.

A run folder holds the saved `config.yaml`, `checkpoints/last.ckpt`, `run.json` (a `Record`) and, after a test,
`predictions.jsonl`. A run started without a folder gets a new one, named by when and what it ran:

    runs/20260101-120000-fit-smollm2-subrow-n200/

A sweep point gets a folder named by its parameters, so that a rerun finds it: `runs/ablation/smollm2-subrow-n25-s0/`.

Run folders live under `root()`: `runs/` in the current folder, or `$LONGDIV_RUNS` (a disk that outlives the work
tree or the machine, for long runs on preemptible machines).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypedDict

RECORD_FILE = "run.json"
RUNS_ENV = "LONGDIV_RUNS"
# Sweep parameters named by a short form, in this order, before any other parameter.
SHORT_NAMES = {"model.model": "", "data.format": "", "data.num_demos": "n", "seed_everything": "s"}


class Record(TypedDict, total=False):
    """What `run.json` holds. A fit writes the fit fields; its test adds the test fields. Records written by older
    versions lack some fields, so readers use `.get` for anything but the test figures of a tested run."""

    stage: str  # the last stage that wrote the record: "fit", "test", or "interrupted" (a fit stopped by Ctrl-C)
    model: str
    format: str
    num_demos: int
    data_seed: int
    order_seed: int
    data_hash: str
    removed_overlap: int  # training problems dropped because an evaluation set holds them
    n_val: int
    n_test: int
    mean_tokens: float  # tokens per training demonstration, prompt and completion
    max_tokens: int
    context: int | None  # the window training and generation fit in (longdiv.data.windows); None: no limit known
    train_windows: int  # training examples: the demonstrations' windows, num_demos when all fit the context
    metrics: dict[str, float]  # the trainer's logged metrics when the stage ended
    versions: dict[str, str | None]
    device: str  # "cpu: <model>" or "cuda: <gpu>"
    machine: dict[str, Any]  # longdiv.hardware.Machine: device, model, fast_bf16, bf16_features, cpu_id
    precision: dict[str, str]  # model.precision as set ("setting") and what training and decoding ran in
    git_commit: str | None
    config: dict[str, Any]  # the resolved run config
    run_dir: str
    # The checkpoint resumed, evaluated or started from: path, use, model, format, num_demos (the record's own for an
    # evaluation), data_seed, data_hash, and the settings used in place of its saved ones (changed).
    checkpoint: dict[str, Any]
    fit_seconds: float  # the whole fit's, across resumes (time after the last checkpoint of a stopped process lost)
    fit_seconds_before_resume: float  # the part before the checkpoint a resumed fit started from
    fit_peak_rss_gb: float
    # One per process that trained the run: device, devices, from_step, to_step, seconds, started (RunRecord).
    segments: list[dict[str, Any]]
    # The test fields: present once the run is tested.
    eval_seconds: float
    accuracy: float
    correct: int
    n_eval: int
    wilson_low: float
    wilson_high: float
    parse_failures: int
    test_resumed: int  # problems read back from an interrupted test in the same folder (not decoded again)


def evaluated(checkpoint: dict | None) -> bool:
    """Whether a run whose record's `checkpoint` is this (identity.from_checkpoint makes it) evaluates that checkpoint's
    weights (test, validate or predict with --ckpt_path) rather than its own fit's."""
    return (checkpoint or {}).get("use") == "evaluated"


def is_tested(record: Record) -> bool:
    """Whether the record holds a test result."""
    return "accuracy" in record


def read(folder: str | Path) -> Record | None:
    """The record in `folder`, or None when it holds none; a file that is not a JSON object is a ValueError that names
    the file."""
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        problem = str(err)
    else:
        if isinstance(record, dict):
            return record
        problem = f"it holds a {type(record).__name__}"
    raise ValueError(f"{path}: not a run record ({problem}); delete the file to run that run again")


def tested(folder: str | Path) -> Record | None:
    """The record in `folder` if its run got as far as its test, else None."""
    record = read(folder)
    return record if record is not None and is_tested(record) else None


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file of a run folder (`predictions.jsonl`, `validations/step-*.jsonl`, a
    self-training `traces.jsonl`), one per line; none when the file does not exist."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def find_tested(folders: Iterable[str | Path]) -> list[Path]:
    """The run folders under `folders` (each searched recursively, itself included) whose run is tested, sorted."""
    found = set()
    for folder in map(Path, folders):
        if not folder.exists():
            raise ValueError(f"{folder}: no such folder; pass run folders or folders that hold them")
        found |= {path.parent for path in folder.rglob(RECORD_FILE)}
    return sorted(f for f in found if tested(f) is not None)


def write(folder: str | Path, record: Record) -> Path:
    """Writes `record` to `folder`/run.json through a file beside it and a rename, so a reader never sees half a
    record; returns the path."""
    path = Path(folder) / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{RECORD_FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def point_name(point: dict[str, Any]) -> str:
    """A folder name made of every parameter of a sweep point, so that points that differ anywhere get different
    folders: model, format, `n<num_demos>` and `s<seed>` first (`smollm2-subrow-n25-s0`), then each other parameter
    as its last dotted part and value (`-lr0.0003`; the whole key where two would share a last part). A `config`
    parameter (an overlay composed after the sweep's configs) is named by its file's stem: `-fixed-steps`."""
    parts = [f"{short}{point[key]}" for key, short in SHORT_NAMES.items() if key in point]
    others = [key for key in point if key not in SHORT_NAMES]
    last = [key.split(".")[-1] for key in others]
    for key, tail in zip(others, last):
        if key == "config":
            parts.append(Path(str(point[key])).stem)
        else:
            parts.append(f"{tail if last.count(tail) == 1 else key}{point[key]}")
    return _safe("-".join(parts))


def root() -> Path:
    """The folder that holds run folders: `$LONGDIV_RUNS` when set, else `runs` in the current folder."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


def new_folder(runs_dir: str | Path, subcommand: str, model: str, format: str, num_demos: int) -> Path:
    """Creates and returns a new run folder in `runs_dir`, named `<time>-<subcommand>-<model>-<format>-n<N>`. The
    folder is created exclusively: a run that finds the name taken (another started in the same second) takes the
    name with `-2`, `-3`, ... appended, so two runs never share a folder."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise not_writable(runs_dir, err) from None
    point = {"model.model": model, "data.format": format, "data.num_demos": num_demos}
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{subcommand}-{point_name(point)}"
    for suffix in ("", *(f"-{k}" for k in range(2, 10_000))):
        try:
            (runs_dir / (name + suffix)).mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise not_writable(runs_dir, err) from None
        return runs_dir / (name + suffix)
    raise RuntimeError(f"{runs_dir / name}: 10,000 runs of this name started this second; use another --runs_dir")


def hold(folder: str | Path) -> int | None:
    """Locks the run folder `folder`, when it exists, for this process: an exclusive flock on the folder itself, let go
    by `release` or by the kernel when the process ends, however it ends. Two processes in one run folder would
    interleave its checkpoints, records and predictions (a job restarted while the first still runs), so the second
    is refused: a ValueError naming the folder. Returns the lock's descriptor (None: no folder yet)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ValueError(f"run folder {folder} is in use: another process is running in it (a fit or test that "
                         "writes it); let that one end, or end it, before you run in this folder again") from None
    except OSError:  # a file system without locks (some network mounts): the run goes on unlocked
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    """Lets go of a lock that `hold` took."""
    if fd is not None:
        os.close(fd)


def discard_unstarted(folder: Path | None) -> None:
    """Removes a run folder whose run failed before its loops started: one holding at most the config saved at
    set-up. A folder holding anything else is left as it is."""
    if folder is None or not folder.is_dir() or not {p.name for p in folder.iterdir()} <= {"config.yaml"}:
        return
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def not_writable(runs_dir: Path, err: OSError) -> ValueError:
    return ValueError(f"runs_dir {runs_dir}: a run folder cannot be created there ({err.strerror}); choose a "
                      f"writable folder with --runs_dir or {RUNS_ENV}")


def gather(items: list) -> list:
    """Every process's `items` concatenated in rank order when torch.distributed runs, else `items` itself. Every
    process must call it."""
    import torch.distributed as dist  # here, so that reading records needs no torch

    if dist.is_available() and dist.is_initialized():
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, items)
        return [x for part in parts for x in part]
    return items
