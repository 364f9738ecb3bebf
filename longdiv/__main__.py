"""`python -m longdiv fit|validate|test|predict ...` runs the LightningCLI; three more commands run tools:

    python -m longdiv report RUN_DIRS... --out DIR     tables and plots from run folders (longdiv/report.py)
    python -m longdiv sweep SWEEP.yaml [filters]       a W&B grid sweep, run locally (longdiv/sweep.py)
    python -m longdiv export --ckpt_path CKPT --out DIR   a Hugging Face folder from a checkpoint (longdiv/export.py)

Every command is run inside one error boundary: bad input (longdiv/errors.py says what counts) comes out as one
line on stderr, `error: <what> (<file or option>): <problem>; <fix>`, with exit status 2. `--debug`, anywhere
before a `--`, shows the traceback instead; bugs always show theirs.
"""

import importlib
import sys

from longdiv import errors

TOOLS = {"report": "longdiv.report", "sweep": "longdiv.sweep", "export": "longdiv.export"}


def run(argv: list[str]) -> int:
    if argv and argv[0] in TOOLS:
        return importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
    from longdiv.cli import main as cli_main

    cli_main()
    return 0


def main() -> None:
    own = sys.argv[1 : sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
    debug = "--debug" in own
    if debug:
        sys.argv.remove("--debug")  # the first one, which is before any `--`
    try:
        code = run(sys.argv[1:])
    except Exception as err:
        if debug or not errors.is_user_error(err):
            raise
        print(errors.one_line(err), file=sys.stderr, flush=True)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
