"""The main job (`make main`): fit the offline SmolLM2 on the paper's 200 problems in the default format, test on
500 generated interpolate problems, and write the headline figures to reports/main.json.

    python -m experiments.main [extra CLI arguments]
    python -m experiments.main --from_run runs/<run>   # the record of a finished run of exactly this job

`--from_run` skips the fit when a run of the same resolved config already exists (experiments.formats runs it as
its seed-0 point): the run's config must equal what `fit --config configs/smollm2.yaml` resolves to, its folder
aside.
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from experiments import runner
from longdiv import report, runs
from longdiv.cli import main

OUT = Path("reports/main.json")
CLI_ARGS = ["fit", "--config", "configs/smollm2.yaml"]


def _without_nones(value):
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    return value


def same_job(config: dict) -> bool:
    """Whether a run's resolved config is the main job's, apart from what the CLI fills in when a run starts: its
    folder (also W&B's), W&B's offline switch, and `weights_only`. The record leaves unset (None) options out."""
    printed = subprocess.run([sys.executable, "-m", "longdiv", *CLI_ARGS, "--print_config"], capture_output=True,
                             text=True, check=True).stdout
    expected = json.loads(json.dumps(yaml.safe_load(printed)))
    for cfg in (expected, config):
        cfg.pop("weights_only", None)
        cfg["trainer"].pop("default_root_dir", None)
        logger = cfg["trainer"].get("logger")
        if isinstance(logger, dict):
            for key in ("save_dir", "offline"):
                logger.get("init_args", {}).pop(key, None)
    return _covers(_without_nones(expected), _without_nones(config))


def _covers(expected, recorded) -> bool:
    """Equal, except that options added to longdiv after the run (missing from its record) are not compared."""
    if isinstance(expected, dict) and isinstance(recorded, dict):
        return recorded.keys() <= expected.keys() and all(_covers(expected[k], v) for k, v in recorded.items())
    return expected == recorded


if __name__ == "__main__":
    args = sys.argv[1:]
    from_run = args[:1] == ["--from_run"]
    run_dir = Path(args[1]) if from_run else main([*CLI_ARGS, *args])
    record = runs.tested(run_dir)
    if record is None:
        sys.exit(f"{run_dir} holds no tested run record")
    if from_run and not same_job(record["config"]):
        sys.exit(f"{run_dir} is not a run of `python -m longdiv {' '.join(CLI_ARGS)}`; run this script without "
                 "--from_run")
    command = "python -m longdiv " + " ".join(CLI_ARGS if from_run else [*CLI_ARGS, *args])
    # the shared row, with the test's every metric beside it
    headline = report.row(run_dir) | {"metrics": record["metrics"], "command": command}
    runner.write_report(OUT, headline)
    print(json.dumps(headline, indent=2))
