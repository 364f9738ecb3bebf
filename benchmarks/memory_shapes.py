"""Does the bf16 training step's memory grow with the number of distinct sequence lengths it meets? Forward and
backward of SmolLM2's bf16 copy over the first 48 demonstrations one at a time (no optimizer), each setting in its
own process: as they come, with oneDNN's primitive cache cut to 8 entries, and with every micro-batch padded on the
right to a multiple of 64 tokens (padding adds no loss and no attention from real tokens). Peak RSS and real tokens/s.

    python -m benchmarks.memory_shapes [--out reports/memory_shapes.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

SETTINGS = {"as they come": (1, {}), "oneDNN cache of 8": (1, {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "8"}),
            "padded to 64": (64, {})}


def run(multiple: int, demos: int = 48) -> dict:
    from benchmarks.speed import data
    from longdiv.callbacks.records import peak_rss_gb
    from longdiv.data.datamodule import collate_train
    from longdiv.models.module import DivisionLM, completion_loss

    dm = data("subrow", num_test=1, batch_size=1)
    model = copy.deepcopy(DivisionLM(model="smollm2", format="subrow", precision="fp32").model)
    model = model.to(torch.bfloat16).train()
    pad = dm.tokenizer.pad_token_id
    examples = dm.train_examples[:demos]
    tokens, start = 0, time.perf_counter()
    for example in examples:
        batch = collate_train([example], pad)
        extra = -batch["input_ids"].shape[1] % multiple
        fill = {"input_ids": pad, "attention_mask": 0, "labels": -100}
        batch = {key: F.pad(value, (0, extra), value=fill[key]) for key, value in batch.items()}
        completion_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"]).backward()
        tokens += int(batch["attention_mask"].sum())
    return {"peak_rss_gb": peak_rss_gb(), "tokens_per_second": tokens / (time.perf_counter() - start),
            "distinct_lengths": len({len(e) for e in examples}),
            "distinct_widths": len({-(-len(e) // multiple) * multiple for e in examples}), "demos": demos}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports/memory_shapes.json")
    parser.add_argument("--_multiple", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._multiple:
        print(json.dumps(run(args._multiple)))
        return
    from longdiv import hardware

    found = {}
    for name, (multiple, env) in SETTINGS.items():
        out = subprocess.run([sys.executable, "-m", "benchmarks.memory_shapes", "--_multiple", str(multiple)],
                             capture_output=True, text=True, check=True, env=os.environ | env).stdout
        found[name] = json.loads(out.strip().splitlines()[-1]) | {"pad_multiple": multiple, "env": env}
        print(name, json.dumps(found[name]), flush=True)
    report = {"machine": hardware.cpu().as_dict(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "command": "python -m benchmarks.memory_shapes", "settings": found}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
