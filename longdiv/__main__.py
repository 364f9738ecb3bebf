"""`python -m longdiv fit|validate|test|predict ...` runs the LightningCLI; three more commands run tools:

    python -m longdiv report RUN_DIRS... --out DIR     tables and plots from run folders (longdiv/report.py)
    python -m longdiv sweep SWEEP.yaml [filters]       a W&B grid sweep, run locally (longdiv/sweep.py)
    python -m longdiv export --ckpt_path CKPT --out DIR   a Hugging Face folder from a checkpoint (longdiv/export.py)
"""

import importlib
import sys

TOOLS = {"report": "longdiv.report", "sweep": "longdiv.sweep", "export": "longdiv.export"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in TOOLS:
        sys.exit(importlib.import_module(TOOLS[sys.argv[1]]).main(sys.argv[2:]))
    from longdiv.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
