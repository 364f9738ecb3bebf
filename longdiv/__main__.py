"""usage: python -m longdiv COMMAND [options]    (python -m longdiv COMMAND --help for a command's options)

commands:
  fit        train on demonstrations, then test (--config configs/<experiment>.yaml; the LightningCLI)
  validate   evaluate a checkpoint on the validation problems (the LightningCLI)
  test       evaluate a checkpoint on the test problems and write predictions.jsonl (the LightningCLI)
  predict    write a checkpoint's records for a file of questions to predictions.jsonl (the LightningCLI)
  report     tables and plots from run folders: report RUN_DIRS... --out DIR (longdiv/report.py)
  sweep      a W&B grid sweep, run locally: sweep SWEEP.yaml [filters] (longdiv/sweep.py)
  export     a Hugging Face folder from a checkpoint: export --ckpt_path CKPT --out DIR (longdiv/export.py)
  ask        ask a checkpoint or exported folder questions and see its traces, verified (longdiv/ask.py)

Every command runs inside one error boundary: bad input (longdiv/errors.py says what counts) comes out as one line
on stderr, `error: <what> (<file or option>): <problem>; <fix>`, with exit status 2. `--debug`, anywhere before a
`--`, shows the traceback instead (still with status 2); bugs always show theirs (status 1). Without a command it
prints this list. A fit stopped by Ctrl-C or SIGTERM writes its record and prints how to resume it (status 1 and
143).
"""

import importlib
import signal
import sys
import traceback

from longdiv import errors

TOOLS = {"report": "longdiv.report", "sweep": "longdiv.sweep", "export": "longdiv.export", "ask": "longdiv.ask"}


def run(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(__doc__, end="")
        return 0
    if not argv:  # no command: the list of all of them, as an error
        print(__doc__, end="", file=sys.stderr)
        return 2
    if argv and argv[0] in TOOLS:
        return importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from longdiv.cli import main as cli_main

    try:
        cli_main()
    except SIGTERMException:  # Lightning stops a run on SIGTERM with status 0, as if it had finished
        return 128 + signal.SIGTERM
    return 0


def main() -> None:
    own = sys.argv[1 : sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
    debug = "--debug" in own
    if debug:
        sys.argv.remove("--debug")  # the first one, which is before any `--`
    try:
        code = run(sys.argv[1:])
    except Exception as err:
        if not errors.is_user_error(err):
            raise
        if debug:
            traceback.print_exc()
        else:
            print(errors.one_line(err), file=sys.stderr, flush=True)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
