"""Does bf16-mixed training change accuracy? The main recipe (configs/smollm2.yaml: `subrow`, the paper's 200
problems, training seed 0) with configs/bf16.yaml composed after it, against the fp32 record of the same point in
reports/formats.json (fit time from its seed-1 twin, which had the CPU to itself); both tested on the same 500
interpolate problems and the paper's 100 validation problems.

    python benchmarks/precision.py [-- extra CLI arguments]

The run lives in runs/formats/smollm2-subrow-n200-s0-bf16/ (skipped once tested); writes reports/precision.json.
"""

import json
import sys
from pathlib import Path

import points

OUT = Path("reports/precision.json")


def subrow_n200(report: str, seed: int) -> dict:
    """The fp32 record of `subrow` at N=200 with this training seed in a committed report."""
    return next(r for r in json.loads(Path(report).read_text())["records"]
                if (r["format"], r["num_demos"], r["seed"]) == ("subrow", 200, seed))


if __name__ == "__main__":
    _, extra = points.split_extra(sys.argv[1:])
    bf16 = points.run("subrow", 200, 0, overlay="bf16", extra=extra)
    fp32 = subrow_n200("reports/formats.json", seed=0)
    # That fp32 fit shared the CPU for part of its time; its seed-1 twin had the machine to itself.
    fp32_timed = subrow_n200("reports/demos.json", seed=1)
    report = {
        "question": "accuracy of the main recipe trained in bf16-mixed against fp32 (this CPU, same data and seed)",
        "fp32": fp32,
        "bf16": bf16,
        "accuracy_difference": bf16["accuracy"] - fp32["accuracy"],
        "fit_seconds_fp32_seed1": fp32_timed["fit_seconds"],
        "fit_speedup": fp32_timed["fit_seconds"] / bf16["fit_seconds"],
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("accuracy_difference", "fit_speedup")}))
