"""Which notation of a subtraction cell does the pretrained model already get right, before any fine-tuning?

    python -m experiments.cell_probe [--model smollm2] [--shots 8] [--out reports/cell_probe.json]

A cell of long division by repeated subtraction takes the running digit a, the divisor digit b and the borrow in c
(0 or 1) and gives the digit d = (a - b - c) mod 10 and the borrow out o = 1 when a - b - c < 0: 200 cases. Each
notation below writes the case as an arithmetic fact of the kind pretraining text holds, a few solved cases of the
same notation before it (`--shots`, fixed cases that are not the one asked), and the model's greedy continuation of
the query is scored against the fact's answer, token by token (one token a digit in SmolLM2's tokenizer). The
notations that the model already answers are candidates for a demonstration format that writes each cell that way
(issue 24: "cells the pretrained model already knows"). No training, and nothing here steers any decoding.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from pathlib import Path

import torch

from longdiv import hardware
from longdiv.models.loading import load
from longdiv.stats import accuracy

OUT = Path("reports/cell_probe.json")
CASES = list(itertools.product(range(10), range(10), range(2)))  # (a, b, c)


def cell(a: int, b: int, c: int) -> tuple[int, int]:
    """The digit and the borrow out of one cell."""
    return (a - b - c) % 10, int(a - b - c < 0)


# name: (what it writes, the fact of a case as (query, answer))
NOTATIONS = {
    "signed": ("a-b-c with its signed result: 3-7-1=-5", lambda a, b, c: (f"{a}-{b}-{c}=", str(a - b - c))),
    "borrowed": ("the minuend with the borrow taken, then both subtractions: 13-7-1=5",
                 lambda a, b, c: (f"{a + 10 * cell(a, b, c)[1]}-{b}-{c}=", str(cell(a, b, c)[0]))),
    "borrowed_sum": ("the minuend with the borrow taken, minus b+c at once: 13-8=5",
                     lambda a, b, c: (f"{a + 10 * cell(a, b, c)[1]}-{b + c}=", str(cell(a, b, c)[0]))),
    "addition": ("the check by addition: 7+1+5=13 (b+c+d is a, or a+10 with a borrow)",
                 lambda a, b, c: (f"{b}+{c}+{cell(a, b, c)[0]}=", str(a + 10 * cell(a, b, c)[1]))),
}


def prompts(notation: str, shots: int, seed: int = 0) -> list[tuple[str, str, tuple[int, int, int]]]:
    """(prompt, answer, case) for each of the 200 cases: `shots` solved other cases, one a line, then the query."""
    write = NOTATIONS[notation][1]
    rng = random.Random(seed)
    out = []
    for case in CASES:
        solved = rng.sample([other for other in CASES if other != case], shots)
        lines = ["".join(write(*other)) for other in solved]
        query, answer = write(*case)
        out.append(("\n".join([*lines, query]), answer, case))
    return out


@torch.no_grad()
def greedy_right(model, tokenizer, batch: list[tuple[str, str, tuple]], special: bool = False) -> list[bool]:
    """Whether greedy decoding of each prompt writes its answer: every answer token is the argmax after the
    prompt and the answer tokens before it (teacher forcing gives exactly greedy's path while it is right). The
    answer must end there too: the token after it is the line break that ends each solved case. With `special`, the
    tokenizer's own special tokens go before the prompt (Gemma's BOS, which it expects)."""
    encoded, starts = [], []
    for prompt, answer, _ in batch:
        head = tokenizer(prompt, add_special_tokens=special)["input_ids"]
        whole = tokenizer(prompt + answer + "\n", add_special_tokens=special)["input_ids"]
        # Where the answer's first token merges with the prompt's last (SmolLM2 has one token for `=-`), scoring
        # starts at that merged token: the model writes what the fact's own tokenization has after the operands.
        start = next((i for i, (x, y) in enumerate(zip(head, whole)) if x != y), len(head))
        encoded.append(whole)
        starts.append(start)
    width = max(map(len, encoded))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([row + [pad] * (width - len(row)) for row in encoded])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in encoded])
    predicted = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
    return [all(predicted[i, pos - 1].item() == row[pos] for pos in range(start, len(row)))
            for i, (row, start) in enumerate(zip(encoded, starts))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    model, tokenizer = load(args.model)
    model.eval()
    records = []
    for name, (what, _) in NOTATIONS.items():
        began = time.perf_counter()
        cases = prompts(name, args.shots)
        right = [r for i in range(0, len(cases), args.batch) for r in greedy_right(model, tokenizer, cases[i:i + args.batch])]
        by = {}
        for key, test in (("borrow_in", lambda a, b, c: c == 1), ("borrow_out", lambda a, b, c: cell(a, b, c)[1] == 1)):
            for value in (True, False):
                chosen = [ok for ok, (_, _, case) in zip(right, cases) if test(*case) is value]
                by[f"{key}_{int(value)}"] = accuracy(sum(chosen), len(chosen))
        records.append({"notation": name, "writes": what, "example": "".join(cases[0][:2]).split("\n")[-1],
                        **accuracy(sum(right), len(right)), "by_borrow": by,
                        "wrong_cases": [list(case) for ok, (_, _, case) in zip(right, cases) if not ok],
                        "seconds": round(time.perf_counter() - began, 1)})
        print(f"{name}: {sum(right)}/{len(right)} right ({what})", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "question": "which notation of a subtraction cell does the pretrained model get right before fine-tuning",
        "model": args.model, "shots": args.shots, "precision": "fp32",
        "device": f"cpu: {hardware.machine(torch.device('cpu')).model}", "records": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
