"""Does the pretrained model look a digit up by its label in a `subrow` question's listing, before any fine-tuning?

    python -m experiments.lookup_probe [--models smollm2 gemma3-270m] [--problems 200] [--out reports/lookup_probe.json]

A `subrow` prompt lists the dividend's digits under labels (`p6q0r2s4t2` for 60242), and every bring-down line of the
trace writes the digit of its label from that listing. Fine-tuned on 200 demonstrations for 150 steps, Gemma 3 270M
gets that digit wrong in most test traces while SmolLM2-135M rarely does (reports/model_size.json). This asks each
pretrained model the lookup alone: the listing of a seeded random dividend of 5 to 8 digits, then `--shots` solved
lookups of other labels of the same listing (`q=0`, one a line), then the query (`s=`), scored as `cell_probe`
scores a fact (the greedy answer token, then the line break), with each tokenizer's special tokens before it
(Gemma's BOS). No training.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from pathlib import Path

import torch

from experiments.cell_probe import greedy_right
from longdiv import hardware
from longdiv.models.loading import load
from longdiv.stats import accuracy

OUT = Path("reports/lookup_probe.json")


def prompts(problems: int, shots: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(prompt, answer digit, listing) for `problems` seeded listings: labels from `p`, as `subrow` writes them."""
    rng = random.Random(seed)
    out = []
    for _ in range(problems):
        digits = str(rng.randrange(10**4, 10**8))
        labels = string.ascii_lowercase[15 : 15 + len(digits)]
        listing = "".join(f"{label}{digit}" for label, digit in zip(labels, digits))
        order = rng.sample(range(len(digits)), shots + 1)
        lines = [listing, *(f"{labels[i]}={digits[i]}" for i in order[:shots]), f"{labels[order[-1]]}="]
        out.append(("\n".join(lines), digits[order[-1]], listing))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    cases = prompts(args.problems, args.shots)
    records = []
    for name in args.models:
        model, tokenizer = load(name)
        model.eval()
        began = time.perf_counter()
        right = [r for i in range(0, len(cases), args.batch)
                 for r in greedy_right(model, tokenizer, cases[i : i + args.batch], special=True)]
        records.append({"model": name, **accuracy(sum(right), len(right)),
                        "seconds": round(time.perf_counter() - began, 1)})
        print(f"{name}: {sum(right)}/{len(right)} lookups right", flush=True)
        del model
    args.out.write_text(json.dumps({
        "question": "does the pretrained model copy a digit by its label from a subrow listing, before fine-tuning",
        "command": "python -m experiments.lookup_probe " + " ".join(argv or []),
        "problems": args.problems, "shots": args.shots, "precision": "fp32", "example": "".join(cases[0][:2]),
        "device": f"cpu: {hardware.machine(torch.device('cpu')).model}", "records": records}, indent=1) + "\n")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
