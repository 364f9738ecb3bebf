"""The demonstration-count ablation on a CPU: the offline SmolLM2 fine-tuned on N = 25, 50, 100, 200 demonstrations in
the `subrow` and `direct` formats, and SmolLM2's architecture from scratch at N = 200, each tested on 500 generated
interpolate problems; then the tables and plots in reports/ablation/.

    python -m experiments.ablation [-- extra CLI arguments for every run, e.g. --trainer.logger=false]

Runs are the points of configs/sweeps/demos.yaml (training seed 0), run by `python -m longdiv sweep` into
runs/ablation/<point>/; a point that already holds a tested run.json is skipped, so the script resumes.
"""

import argparse
import sys

from experiments import runner
from longdiv import report, runs, sweep

SWEEP = "configs/sweeps/demos.yaml"
RUNS = str(runs.root() / "ablation")
POINTS = [
    ["--models", "smollm2", "--formats", "subrow", "direct", "--num_demos", "25", "50", "100", "200"],
    ["--models", "scratch:smollm2-135m", "--formats", "subrow", "--num_demos", "200"],
]

if __name__ == "__main__":
    own, extra = runner.split_extra(sys.argv[1:])
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(own)
    failed = 0
    for filters in POINTS:
        failed |= sweep.main([SWEEP, "--runs_dir", RUNS, "--seeds", "0", *filters, "--", *extra])
    # The rows of points whose runs are not here (another session's, issue 27's Gemma points) stay in the report.
    report.main([RUNS, "--keep", "reports/ablation/table.csv", "--out", "reports/ablation"])
    sys.exit(failed)
