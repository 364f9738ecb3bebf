"""Which memory allocator trains fastest on a CPU: `Trainer.fit` tokens/s of the paper curve's recipe (the offline
SmolLM2, the restricted output layer, micro-batches of 1 in 2,048-token windows, `--model.compile`, the precision
`auto` picks) under glibc's malloc and under jemalloc and tcmalloc preloaded (`LD_PRELOAD`), each case in a process
of its own, side by side in one run; glibc's case runs first and last, so that the machine's drift shows. Writes
reports/speed/allocator.json.

    python -m benchmarks.allocator [--format recchia-ln+] [--micro_steps 16] [--warmup 4] [--eager]

A profile of the LN+ fit (perf, 30 s) put about a sixth of the main thread's samples in glibc's malloc and free
(`_int_malloc`, `malloc_consolidate`, ...), time in which the second core waits; every case trains the same windows
from the same weights, so only the allocator differs. An allocator not installed (Debian: libjemalloc2,
libtcmalloc-minimal4) is skipped and named in the report.
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

OUT = Path("reports/speed/allocator.json")
ALLOCATORS = {"glibc": None, "jemalloc": "jemalloc", "tcmalloc": "tcmalloc_minimal"}


def one(args: argparse.Namespace) -> dict:
    """This process's case: what it measured and which allocator its memory maps show."""
    import torch

    from benchmarks.paper_speed import measure
    from longdiv import hardware
    from longdiv.callbacks.records import peak_rss_gb

    case = measure(args.format, 2048, True, 1, args.micro_steps, args.warmup, compiled=not args.eager)
    return case | {"allocator_loaded": hardware.allocator(), "threads": torch.get_num_threads(),
                   "peak_rss_gb": round(peak_rss_gb(), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="recchia-ln+")
    parser.add_argument("--micro_steps", type=int, default=16, help="timed micro-batches per case")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--eager", action="store_true", help="train uncompiled")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a case, in its own process
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args)), flush=True)
        return
    from longdiv import hardware

    found = {name: ctypes.util.find_library(lib) if lib else "" for name, lib in ALLOCATORS.items()}
    order = [name for name in ALLOCATORS if found[name] is not None] + ["glibc"]
    argv = ["--format", args.format, "--micro_steps", str(args.micro_steps), "--warmup", str(args.warmup),
            *["--eager"] * args.eager]  # what each case's process measures
    cases = []
    for name in order:
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # glibc's case: nothing preloaded
        env |= {"LD_PRELOAD": found[name]} if found[name] else {}
        out = subprocess.run([sys.executable, "-m", "benchmarks.allocator", *argv, "--one"], env=env, check=True,
                             capture_output=True, text=True).stdout
        cases.append({"allocator": name, "library": found[name] or None} | json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(cases[-1]), flush=True)
        if cases[-1]["allocator_loaded"] != name:
            raise SystemExit(f"error: the {name} case ran with {cases[-1]['allocator_loaded']} loaded")
    glibc = [c["fit_tokens_per_second"] for c in cases if c["allocator"] == "glibc"]
    for case in cases:  # against the mean of glibc's first and last cases
        case["fit_vs_glibc"] = round(case["fit_tokens_per_second"] / (sum(glibc) / len(glibc)), 3)
    machine = hardware.machine("cpu")
    report = {"machine": {"cpu": machine.model, "bf16_features": machine.bf16_features},
              "command": " ".join(["python -m benchmarks.allocator", *argv]),
              "not_installed": [name for name, path in found.items() if path is None],
              "glibc_drift": round(glibc[-1] / glibc[0], 3), "cases": cases}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
