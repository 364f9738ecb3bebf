"""Bad input as one line: the error type the entry points raise for it, and what the boundary in `__main__` counts
as bad input.

`python -m longdiv ...` prints a user error as `error: <what> (<file or option>): <problem>; <fix>` and exits with
status 2; `--debug` shows its traceback instead. Three kinds of exception count as user errors:
- `UsageError`, raised where the input is read (a checkpoint, a sweep or config YAML, a model name);
- a command line the parser refuses (argparse's and jsonargparse's complaints, raised as `UsageError`);
- a `ValueError` or `FileNotFoundError` raised before the first batch runs: the checks of config, data files,
  names and hardware raise these while a run is set up, with messages that name the input and the fix. Once
  batches run, such an error is a bug, and keeps its traceback, as does every other exception type.

This module imports neither torch nor Lightning, so the tools that use it start fast.
"""

from __future__ import annotations

import argparse
import errno
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Set by the CLI when the first training, validation, test or predict loop starts (see `work_started`).
_started = False


class UsageError(ValueError):
    """Input the user can fix. `problem` says what is wrong with `what`, found in `where` (a file or an option);
    `fix` says what to do, and may be left out where the problem already says it."""

    def __init__(self, what: str, where: str | Path, problem: str, fix: str | None = None):
        self.what, self.where, self.problem, self.fix = what, str(where), problem, fix
        super().__init__(f"{what} ({where}): {problem}" + (f"; {fix}" if fix else ""))


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose complaints about a command line are raised as `UsageError`, for the boundary to print as
    one line, rather than printed with the usage text."""

    def error(self, message: str):
        raise UsageError("command line", self.prog, message, f"see {self.prog} --help")


def work_started() -> None:
    """Marks that the run's loops have begun: from here on a ValueError is a bug, not bad input."""
    global _started
    _started = True


def started() -> bool:
    return _started


# A disk that is full or cannot be written: the machine's state, not a bug, at any moment of a run.
DISK = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space", errno.EROFS: "choose a writable folder",
        errno.EACCES: "choose a folder you can write"}


def disk_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK


def is_user_error(err: BaseException) -> bool:
    """Whether the boundary prints `err` as one line rather than with its traceback."""
    return (isinstance(err, UsageError) or disk_error(err)
            or (not _started and isinstance(err, (ValueError, FileNotFoundError))))


def one_line(err: BaseException) -> str:
    """The error line the boundary prints: `error: ` and the message, its whitespace runs folded to one space."""
    if disk_error(err):
        where = f" ({err.filename})" if err.filename else ""
        return (f"error: disk{where}: {err.strerror}; {DISK[err.errno]} (--runs_dir or LONGDIV_RUNS for runs), then "
                "resume from the last checkpoint")
    return "error: " + " ".join(str(err).split())


def yaml_problem(err: Exception) -> str:
    """A YAML parser's complaint as one phrase, with the line and column it points at."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"not valid YAML: {getattr(err, 'problem', None) or err}{where}"


def checkpoint_damage(path: str | Path) -> str | None:
    """What is wrong with the checkpoint file at `path` when it is empty or not a complete archive (torch saves zip
    archives, so a file cut short by a full disk or an interrupted copy has no central directory); None when the
    file looks whole or is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    if not zipfile.is_zipfile(path):
        return f"the file is truncated or damaged ({size:,} bytes, not a complete torch checkpoint archive)"
    return None


@contextmanager
def reading_checkpoint(path: str | Path | None, option: str = "--ckpt_path") -> Iterator[None]:
    """Turns a failure to load the checkpoint at `path` into a `UsageError` naming the file, when the file is
    empty or cut short; any other failure goes on as it was."""
    try:
        yield
    except (EOFError, OSError, RuntimeError, pickle.UnpicklingError) as err:
        problem = checkpoint_damage(path) if path else None
        if problem is None:
            raise
        fix = "pass a whole checkpoint that a longdiv run wrote, such as runs/<run>/checkpoints/last.ckpt"
        raise UsageError("checkpoint", f"{option} {path}", problem, fix) from err
