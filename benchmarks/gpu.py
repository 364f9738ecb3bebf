"""What a lent GPU machine adds to the CPU figures (issues 5 and 6), in one run sized to the device's time budget.

    python benchmarks/gpu.py --out DIR --budget 420     # on the GPU machine; DIR is what comes back
    python benchmarks/gpu.py --collect DIR              # here: unpack into runs/gpu/, write the reports

1. Points of the ablation's grid (configs/sweeps/demos.yaml) through `python -m longdiv sweep`, in the GPU recipe:
   bf16-mixed; the recipe's optimizer steps of 8 demonstrations taken as one batch of 8 rather than 8 accumulated
   micro-batches of 1 (the CPU's memory choice); the test's 500 problems generated in one batch; no checkpoints
   but the first point's, which the decoding benchmark reads. Points start in the order of POINTS while the budget
   lasts.
2. benchmarks/speed.py on the GPU (gemm, train, bf16, decode), right after the first point.
After every step DIR/runs.tgz holds each finished point's run.json and predictions, and DIR/speed_gpu.json the
speed record, so that a run cut short still returns what it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from longdiv import sweep

SWEEP = "configs/sweeps/demos.yaml"
RUNS = Path("runs/gpu")
GPU_RECIPE = ["--trainer.precision=bf16-mixed", "--data.batch_size=8", "--trainer.accumulate_grad_batches=1",
              "--data.eval_batch_size=500", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]
# (format, demonstrations, training seed), most wanted first: N=200 anchors the GPU recipe against the CPU's, then
# the counts a CPU cannot afford, the small counts, and second seeds.
POINTS = [("subrow", 200, 0), ("subrow", 800, 0), ("subrow", 400, 0), ("subrow", 50, 0), ("subrow", 100, 0),
          ("subrow", 25, 0), ("direct", 800, 0), ("subrow", 200, 1), ("subrow", 800, 1), ("subrow", 50, 1)]


def pack(out: Path) -> None:
    """Every finished point's records into out/runs.tgz (checkpoints stay behind)."""
    with tarfile.open(out / "runs.tgz", "w:gz") as tar:
        for record in sorted(RUNS.glob("*/run.json")):
            for name in ("run.json", "predictions.jsonl", "config.yaml"):
                if (record.parent / name).is_file():
                    tar.add(record.parent / name)


def sweep_point(fmt: str, num_demos: int, seed: int, extra: list[str]) -> int:
    command = [sys.executable, "-m", "longdiv", "sweep", SWEEP, "--runs_dir", str(RUNS), "--models", "smollm2",
               "--formats", fmt, "--num_demos", str(num_demos), "--seeds", str(seed), "--", *GPU_RECIPE, *extra]
    return subprocess.run(command, check=False).returncode


def on_gpu(out: Path, budget: float, extra: list[str]) -> None:
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    log = {"points": []}
    for number, (fmt, num_demos, seed) in enumerate(POINTS):
        if number and time.perf_counter() - start > budget:
            break
        began = time.perf_counter()
        keep = [] if number == 0 else ["--trainer.enable_checkpointing=false"]
        code = sweep_point(fmt, num_demos, seed, keep + extra)
        log["points"].append({"format": fmt, "num_demos": num_demos, "seed": seed, "returncode": code,
                              "seconds": round(time.perf_counter() - began, 1)})
        pack(out)
        if number == 0:
            began = time.perf_counter()
            point = {"model.model": "smollm2", "data.format": fmt, "data.num_demos": num_demos, "seed_everything": seed}
            ckpt = RUNS / sweep.point_name(point) / "checkpoints" / "last.ckpt"
            sections = ["gemm", "train", "bf16"] + (["decode", "--ckpt", str(ckpt)] if ckpt.is_file() else [])
            # speed.py imports longdiv, which the GPU machine has only as this folder, not installed.
            env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
            log["speed_returncode"] = subprocess.run(
                [sys.executable, "benchmarks/speed.py", "--device", "cuda", "--format", fmt, "--micro_batch", "8",
                 "--accumulate", "1", "--micro_steps", "20", "--bf16_micro_steps", "20", "--eval_batch_size", "200",
                 "--baseline_every", "40", "--out", str(out / "speed_gpu.json"), "--only", *sections],
                check=False, env=env).returncode
            log["speed_seconds"] = round(time.perf_counter() - began, 1)
        (out / "log.json").write_text(json.dumps(log, indent=2))


def collect(folder: Path) -> None:
    """Unpacks the records of a GPU run (every .tgz in `folder`) here and writes reports/ablation_gpu/ and
    reports/speed.json's `gpu` record."""
    from longdiv import report  # matplotlib and the rest: only where the reports are written

    for archive in sorted(folder.glob("*.tgz")):
        with tarfile.open(archive) as tar:
            tar.extractall(".", filter="data")
    report.main([str(RUNS), "--out", "reports/ablation_gpu"])
    if (folder / "speed_gpu.json").is_file():
        speed = json.loads(Path("reports/speed.json").read_text())
        speed["gpu"] = json.loads((folder / "speed_gpu.json").read_text())
        Path("reports/speed.json").write_text(json.dumps(speed, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="on the GPU machine: the folder that comes back")
    parser.add_argument("--budget", type=float, default=420, help="seconds after which no new point starts")
    parser.add_argument("--collect", type=Path, help="here: the folder that came back")
    args, extra = parser.parse_known_args()
    if args.collect:
        collect(args.collect)
    else:
        on_gpu(args.out, args.budget, extra)
