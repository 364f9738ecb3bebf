"""Where a model trained on the paper's grid format (`recchia-*`) goes wrong: each generated trace against the
reference trace of its problem, action by action, and the first action that differs, sorted into kinds by what the
right action was doing on the grid.

    python -m experiments.recchia_errors RUN_DIR [--out reports/recchia_w_errors.json]

Kinds of the first wrong action (the verifier gives this format only a final-answer verdict):
- `copy`: the first action, which writes the divisor, the bracket and the dividend onto row 2 of the grid;
- `comparison`: one trace adds the divisor once more where the other stops (or the reverse): the quotient digit is
  picked by a comparison that the W variant never writes down;
- `addition`: a digit of a running multiple, built by repeated addition in the scratch area;
- `scratch`: setting up or clearing the scratch area;
- `grid`: writing the multiple under the current number, subtracting digit by digit with borrows, erasing leading
  zeros, bringing the next digit down;
- `answer`: the final `{ final remainder is ... }` read off a right grid;
- `unfinished`: every action right, but the trace stops (the generation budget ran out) before the end.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import Counter
from pathlib import Path

from longdiv import runs
from longdiv.data.formats import get_format
from longdiv.data.formats.recchia import SCRATCH_X
from longdiv.data.problems import Problem

ACTION = re.compile(r"(write (?:\d\d,\d\d:\d+ \S+ ?)+|clear|\{[^}]*\})")
CELL = re.compile(r"(\d\d),(\d\d):\d+ (\S+)")


def actions(text: str) -> list[str]:
    return [a.strip() for a in ACTION.findall(text)]


def cells(action: str) -> list[tuple[int, int, str]]:
    return [(int(x), int(y), ch) for x, y, ch in CELL.findall(action)]


def is_quotient_step(found: list[tuple[int, int, str]]) -> bool:
    """Whether an action's cells increment the quotient digit on row 1 (with the next divisor copy), as the W
    variant writes it."""
    return bool(found) and found[0][1] == 1 and found[0][0] < SCRATCH_X and len(found) > 1


def kind(reference: list[str], generated: list[str], at: int) -> str:
    """The kind of the first differing action `at` (both lists are action strings)."""
    if at >= len(generated):
        return "unfinished"
    if at == 0:
        return "copy"
    right, wrong = reference[at], generated[at]
    if right.startswith("{"):
        return "answer"
    found = cells(right)
    if is_quotient_step(found) != is_quotient_step(cells(wrong)):
        return "comparison"
    if right == "clear":
        return "scratch"
    if all(x >= SCRATCH_X for x, _, _ in found):
        return "addition" if len(found) == 1 and found[0][2].isdigit() else "scratch"
    return "grid"


def first_error(reference: list[str], generated: list[str]) -> tuple[str, int]:
    """The kind and index of the first generated action that differs from the reference."""
    at = next((i for i, (a, b) in enumerate(zip(reference, generated)) if a != b), min(len(reference), len(generated)))
    if at == len(reference):
        return ("right trace" if len(generated) == len(reference) else "runs on past the answer"), at
    return kind(reference, generated, at), at


def analyse(run_dir: Path) -> dict:
    record = runs.read(run_dir)
    fmt = get_format(record["format"])
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    kinds, at_fraction, examples = Counter(), [], {}
    lengths = {True: [], False: []}
    for row in rows:
        _, completion = fmt.render(Problem(row["dividend"], row["divisor"], row["question"]))
        reference, generated = actions(completion), actions(row["generated"])
        lengths[bool(row["correct"])].append(len(reference))
        found, at = first_error(reference, generated)
        if found in ("right trace", "runs on past the answer"):
            kinds[found] += 1
            continue
        kinds[found] += 1
        at_fraction.append(at / len(reference))
        examples.setdefault(found, {
            "question": row["question"], "action": at, "of": len(reference),
            "right": reference[at], "generated": generated[at] if at < len(generated) else None,
        })
    return {
        "run_dir": str(run_dir), "format": record["format"], "num_demos": record["num_demos"],
        "n": len(rows), "correct": sum(r["correct"] for r in rows), "device": record.get("device"),
        "first_error_kinds": dict(kinds.most_common()),
        "first_error_at_fraction_of_trace": {
            "median": round(statistics.median(at_fraction), 3) if at_fraction else None,
            "quartiles": [round(q, 3) for q in statistics.quantiles(at_fraction, n=4)] if len(at_fraction) > 1 else None,
        },
        "reference_actions": {
            "mean_correct": round(statistics.mean(lengths[True]), 1) if lengths[True] else None,
            "mean_wrong": round(statistics.mean(lengths[False]), 1) if lengths[False] else None,
        },
        "example_per_kind": examples,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("reports/recchia_w_errors.json"))
    args = parser.parse_args()
    result = analyse(args.run_dir)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("n", "correct", "first_error_kinds", "first_error_at_fraction_of_trace")}))
