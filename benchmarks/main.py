"""The main job: fit the offline SmolLM2 on the paper's 200 problems in the default format, test on 500
generated interpolate problems, and write the headline figures to reports/main.json.

    python benchmarks/main.py [extra CLI arguments]
"""

import json
import os
import sys
from pathlib import Path

from longdiv.cli import RUN_DIR_ENV, main

KEYS = ("accuracy", "n_eval", "correct", "wilson_low", "wilson_high", "fit_seconds", "eval_seconds", "fit_peak_rss_gb",
        "mean_tokens", "max_tokens", "format", "num_demos", "parse_failures", "data_hash", "run_dir", "metrics")

if __name__ == "__main__":
    cli_args = ["fit", "--config", "configs/smollm2.yaml", *sys.argv[1:]]

    main(cli_args)
    run_dir = Path(os.environ[RUN_DIR_ENV])  # the folder the CLI chose for this run
    record = json.loads((run_dir / "run.json").read_text())
    Path("reports").mkdir(exist_ok=True)
    report = {k: record.get(k) for k in KEYS} | {"command": "python -m longdiv " + " ".join(cli_args)}
    Path("reports/main.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
