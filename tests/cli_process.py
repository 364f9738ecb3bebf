"""`python -m longdiv ...` as a user runs it, in a process of its own that starts in milliseconds.

A test of what a command prints and returns needs a process of its own: its exit status, everything it writes to
stdout and stderr, Python's default warning filters, no state left by other tests. Starting Python and importing
Lightning costs each such process about five seconds of a 2-core CPU. Here a fork server (multiprocessing's
`forkserver`: a fresh interpreter that has imported Lightning and the package once, in each test worker) forks every
command instead, and the child runs the module as `python -m` does, in the caller's folder and environment.

The tests that start processes to stop them (Ctrl-C, SIGTERM, SIGKILL), to trace them, or with a
changed environment that modules read on import (W&B, the hub) still start Python itself.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import traceback

PRELOAD = ["lightning", "longdiv.cli", "longdiv.models.module", "tests.cli_process"]


def _child(module: str, argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):  # the files the parent reads, under the streams Python already has
        opened = os.open(path, os.O_WRONLY)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [module, *argv]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:  # as the interpreter ends: None is 0, an int itself, anything else printed, then 1
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except Exception:  # noqa: BLE001 - a bug: its traceback, status 1, as the interpreter prints it
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(*argv: str, module: str = "longdiv", cwd: str | os.PathLike | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGV...` in `cwd` (default: this folder) and this environment, its output captured as
    text."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # read when the server starts: the first call in each test worker
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        for path in (out, err):
            open(path, "w").close()
        where = os.fspath(cwd or os.getcwd())
        child = context.Process(target=_child, args=(module, list(argv), dict(os.environ), where, out, err))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired([sys.executable, "-m", module, *argv], timeout)
        with open(out) as stdout, open(err) as stderr:
            return subprocess.CompletedProcess([sys.executable, "-m", module, *argv], child.exitcode, stdout.read(),
                                               stderr.read())
