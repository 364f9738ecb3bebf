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
"""

import importlib
import sys

TOOLS = {"report": "longdiv.report", "sweep": "longdiv.sweep", "export": "longdiv.export", "ask": "longdiv.ask"}


def main() -> None:
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(__doc__, end="")
        return
    if len(sys.argv) > 1 and sys.argv[1] in TOOLS:
        sys.exit(importlib.import_module(TOOLS[sys.argv[1]]).main(sys.argv[2:]))
    from longdiv.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
