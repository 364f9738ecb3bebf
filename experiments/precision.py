"""Does bf16-mixed training change accuracy? The main recipe (configs/smollm2.yaml: `subrow`, the paper's 200
problems, training seed 0) fitted with configs/overlays/bf16.yaml composed after it, against the fp32 record of the same point
in reports/formats.json (fit time from its seed-1 twin, which had the CPU to itself). Only the training precision
differs: the bf16-trained checkpoint is tested in fp32, as the fp32 one was, on the same 500 interpolate problems
and the paper's 100 validation problems.

    python -m experiments.precision [-- extra CLI arguments]

The run lives in runs/formats/smollm2-subrow-n200-s0-bf16/: the fit (skipped once its checkpoint exists), its test in
`test/` and the paper test in `paper_val/` (each skipped once done); writes reports/precision.json.
"""

import argparse
import json
import sys
from pathlib import Path

from experiments import runner
from longdiv import runs

OUT = Path("reports/precision.json")


def subrow_n200(report: str, seed: int) -> dict:
    """The fp32 record of `subrow` at N=200 with this training seed in a committed report."""
    return next(r for r in json.loads(Path(report).read_text())["records"]
                if (r["format"], r["num_demos"], r["seed"]) == ("subrow", 200, seed))


def bf16_point(extra: list[str]) -> dict:
    """Fits the main recipe in bf16-mixed and tests it in fp32; its report record."""
    path = runner.folder("subrow", 200, 0, "bf16")
    ckpt = path / "checkpoints" / "last.ckpt"
    point = ["--config", runner.CONFIG, "--data.format=subrow", "--data.num_demos=200", "--seed_everything=0"]
    if not ckpt.is_file():
        runner.cli(["fit", *point, "--config", "configs/overlays/bf16.yaml", "--test_after_fit=false",
                    f"--trainer.default_root_dir={path}", *extra])
    for sub, test_file in (("test", []), ("paper_val", [f"--data.test_file={runner.PAPER_VAL}"])):
        if runs.tested(path / sub) is None:
            runner.cli(["test", *point, *test_file, f"--ckpt_path={ckpt}",
                        f"--trainer.default_root_dir={path / sub}", *extra])
    fit = runs.read(path)
    # The test's record, with the fit's config and its time and memory: one record of the whole run.
    test = runs.tested(path / "test") | {k: fit[k] for k in ("fit_seconds", "fit_peak_rss_gb", "config")}
    return runner.record(path, test) | {"train_precision": "bf16-mixed", "test_precision": "32"}


if __name__ == "__main__":
    argv, extra = runner.split_extra(sys.argv[1:])
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)  # --help, and no stray options
    bf16 = bf16_point(extra)
    fp32 = subrow_n200("reports/formats.json", seed=0)
    # That fp32 fit shared the CPU for part of its time; its seed-1 twin had the machine to itself.
    fp32_timed = subrow_n200("reports/demos.json", seed=1)
    report = {
        "question": "accuracy of the main recipe trained in bf16-mixed against fp32 (this CPU, same data and seed; "
                    "both tested in fp32)",
        "fp32": fp32,
        "bf16": bf16,
        "accuracy_difference": bf16["accuracy"] - fp32["accuracy"],
        "paper_val_difference": bf16["paper_val"]["accuracy"] - fp32["paper_val"]["accuracy"],
        "fit_seconds_fp32_seed1": fp32_timed["fit_seconds"],
        "fit_speedup": fp32_timed["fit_seconds"] / bf16["fit_seconds"],
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("accuracy_difference", "paper_val_difference", "fit_speedup")}))
