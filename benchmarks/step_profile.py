"""Where a training micro-step of SmolLM2 spends its time on this CPU, fp32 against bf16 autocast: why bf16-mixed
gains about 1.1x here (reports/speed.json) although the bf16 matrix-multiply peak is 7x the fp32 one.

    python -m benchmarks.step_profile [--steps 4] [--out reports/step_profile.json]

The same micro-batches of 1 demonstration (the main recipe's `subrow`, the paper's problems) and the same loss as
`Trainer.fit` (longdiv.models.module.completion_loss), forward and backward, no optimizer step (that runs once per 8
micro-steps and does not depend on autocast); and, as the bound for casting once per optimizer step, a bf16 copy
of the weights run without autocast. One warm-up step, then `--steps` profiled with torch.profiler; CPU time
is summed by operator (self time) and grouped: matrix multiplies, casts/copies, attention and the rest.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections import defaultdict
from pathlib import Path

import torch

from benchmarks.speed import data
from longdiv.models.module import DivisionLM, completion_loss

MATMUL = {"addmm", "mm", "bmm", "matmul", "linear"}
CAST_COPY = {"to", "_to_copy", "copy_", "clone", "contiguous"}


def group(name: str) -> str:
    """The group of a profiled operator (`aten::mm` -> matmul)."""
    op = name.removeprefix("aten::")
    if op in MATMUL:
        return "matmul"
    if op in CAST_COPY:
        return "cast_copy"
    if "attention" in op or "softmax" in op:
        return "attention"
    return "other"


def profile(model, batches, bf16: bool) -> dict:
    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = completion_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        loss.backward()
        model.zero_grad(set_to_none=True)

    step(batches[0])  # warm-up
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[1:])
    start = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    seconds = time.perf_counter() - start
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for batch in batches[1:]:
            step(batch)
    by_group, by_op = defaultdict(float), defaultdict(float)
    for event in prof.key_averages():
        # self time, so nested operators are not counted twice
        by_group[group(event.key)] += event.self_cpu_time_total / 1e6
        by_op[event.key] += event.self_cpu_time_total / 1e6
    total = sum(by_group.values())
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:12]
    return {
        "tokens_per_second_unprofiled": round(tokens / seconds, 1),
        "profiled_seconds": round(total, 3),
        "share_by_group": {k: round(v / total, 3) for k, v in sorted(by_group.items(), key=lambda kv: -kv[1])},
        "seconds_by_group": {k: round(v, 3) for k, v in by_group.items()},
        "top_ops_seconds": {k: round(v, 3) for k, v in top},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("reports/step_profile.json"))
    args = parser.parse_args()
    dm = data("subrow", num_test=1, batch_size=1)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(0)
    batches = [b for _, b in zip(range(args.steps + 1), loader)]
    model = DivisionLM(model="smollm2", format="subrow").model.train()
    report = {
        "threads": torch.get_num_threads(), "torch": torch.__version__, "micro_batch": 1,
        "profiled_steps": args.steps, "tokens": [int(b["attention_mask"].sum()) for b in batches[1:]],
        "fp32": profile(model, batches, bf16=False),
        "bf16_autocast": profile(model, batches, bf16=True),
        # The bound for casting once per optimizer step: weights already bf16, no autocast, no casts per micro-step.
        "bf16_weights": profile(copy.deepcopy(model).to(torch.bfloat16), batches, bf16=False),
    }
    fp32, bf16 = report["fp32"]["seconds_by_group"], report["bf16_autocast"]["seconds_by_group"]
    report["bf16_over_fp32_seconds_by_group"] = {k: round(bf16.get(k, 0) / fp32[k], 2) for k in fp32 if fp32[k]}
    report["speedup_unprofiled"] = {name: round(report[name]["tokens_per_second_unprofiled"]
                                                / report["fp32"]["tokens_per_second_unprofiled"], 2)
                                    for name in ("bf16_autocast", "bf16_weights")}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("speedup_unprofiled", "bf16_over_fp32_seconds_by_group")}))
    for name in ("fp32", "bf16_autocast", "bf16_weights"):
        print(name, report[name]["share_by_group"])


if __name__ == "__main__":
    main()
