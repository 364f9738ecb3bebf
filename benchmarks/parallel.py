"""Two runs side by side on one thread each, or one run on both cores: which trains more tokens a second on a
2-core CPU? It decides how a session queues its screens (one at a time, or two at once).

    python -m benchmarks.parallel [--steps 12] [--out reports/parallel.json]

Each worker is its own process: SmolLM2's bf16 copy (what `--model.precision auto` trains on where the CPU has
native bf16; fp32 elsewhere) runs forward and backward on the paper's `subrow` demonstrations, one a micro-step,
as the main recipe does; one warm-up step, then `--steps` timed. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("reports/parallel.json")


def worker(steps: int) -> dict:
    import torch

    from benchmarks.speed import data
    from longdiv import hardware
    from longdiv.models.module import DivisionLM, completion_loss

    dm = data("subrow", num_test=1, batch_size=1)
    model = DivisionLM(model="smollm2", format="subrow").model.train()
    if hardware.cpu().fast_bf16:
        model = model.to(torch.bfloat16)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(0)
    tokens, start = 0, 0.0
    for step, batch in enumerate(loader):
        if step == 1:
            start = time.perf_counter()
        completion_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"]).backward()
        model.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum()) if step else 0
        if step == steps:
            break
    return {"threads": torch.get_num_threads(), "tokens_per_second": tokens / (time.perf_counter() - start),
            "dtype": str(next(model.parameters()).dtype)}


def launch(threads: int, steps: int) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.parallel", "--worker", "--steps", str(steps)],
                            stdout=subprocess.PIPE, text=True, env=env)


def results(procs: list[subprocess.Popen]) -> list[dict]:
    outs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "a worker failed"
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.steps)))
        return
    from longdiv import hardware

    both = results([launch(os.cpu_count() or 1, args.steps)])
    pair = results([launch(1, args.steps), launch(1, args.steps)])
    report = {"machine": hardware.cpu().as_dict(), "steps": args.steps, "one_run_all_cores": both,
              "two_runs_one_thread": pair,
              "tokens_per_second_one_run": both[0]["tokens_per_second"],
              "tokens_per_second_two_runs": sum(r["tokens_per_second"] for r in pair)}
    report["two_runs_vs_one"] = report["tokens_per_second_two_runs"] / report["tokens_per_second_one_run"]
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
