"""Decoding speed of longdiv's attention (longdiv/models/attention.py) against transformers' own SDPA attention, on
batches with and without left padding, in bf16 and fp32.

    python -m benchmarks.decode_attention [--rows 50] [--steps 300] [--out reports/decode_attention.json]

Without padding the library passes no mask, and its SDPA path for one query token then calls PyTorch's kernel with
`enable_gqa`; `longdiv` gives that query an all-true mask, which sends it down the library's other path (query heads
folded per key/value head). The offline SmolLM2 (pretrained weights: the speed does not depend on them), random
prompts of 40 tokens, every row decoding `--steps` tokens (no EOS), our decode loop; each variant warmed up first.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from longdiv import hardware
from longdiv.models.decode import decode
from longdiv.models.loading import load


def tokens_per_second(model, ids, mask, steps: int) -> float:
    decode(model, ids, mask, 3, eos_id=-1)  # warm-up
    start = time.perf_counter()
    decode(model, ids, mask, steps, eos_id=-1)
    return ids.shape[0] * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dtypes", nargs="*", default=["bf16", "fp32"])
    parser.add_argument("--out", type=Path, default=Path("reports/decode_attention.json"))
    args = parser.parse_args()
    machine = hardware.machine(torch.device("cpu"))
    report = {"cpu": machine.model, "fast_bf16": machine.bf16_features, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "rows": args.rows, "steps": args.steps, "prompt_tokens": 40,
              "command": f"python -m benchmarks.decode_attention --rows {args.rows} --steps {args.steps}",
              "tokens_per_second": {}}
    ids = torch.randint(100, 20000, (args.rows, 40), generator=torch.Generator().manual_seed(0))
    masks = {"no_padding": torch.ones_like(ids), "left_padded": torch.ones_like(ids)}
    masks["left_padded"][::2, :5] = 0  # every other row 5 tokens shorter
    base, _ = load("smollm2")
    for name in args.dtypes:
        longdiv = copy.deepcopy(base).to(torch.bfloat16 if name == "bf16" else torch.float32).eval()
        library = copy.deepcopy(longdiv)
        library.set_attn_implementation("sdpa")
        for padding, mask in masks.items():
            found = {"longdiv": tokens_per_second(longdiv, ids, mask, args.steps),
                     "library_sdpa": tokens_per_second(library, ids, mask, args.steps)}
            found["ratio"] = found["longdiv"] / found["library_sdpa"]
            report["tokens_per_second"][f"{name}-{padding}"] = found
            print(name, padding, json.dumps(found), flush=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
