"""What a wrong subtraction line looks like, in the traces of `subrow` runs: the evidence behind `subfix`'s slips.

    python -m experiments.slips RUN_DIR [RUN_DIR ...] [--out reports/slips.json]

Reads each run's predictions.jsonl and, for every trace whose first wrong step is a subtraction, compares the
written line with the line that belongs there: how many characters differ, whether the first is a value digit or a
separator, and by how much a wrong value digit is off (written minus right, mod 10). `subfix` writes its practice
slips as one value digit off by one; this says how often the model's own first slips have that shape. For `subfix`
runs it also counts what the model struck out (`strikes`): right lines (false alarms) or wrong ones, the slips it
left standing, and whether the line written after a strike was right. Pure Python; no model.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from longdiv import runs
from longdiv.data.formats import get_format
from longdiv.data.formats.sub import STRIKE, struck
from longdiv.data.problems import Problem


def shape(got: str, want: str) -> tuple[str, int | None]:
    """The shape of a wrong line of 3-character cells: (what, offset of the first wrong value digit or None)."""
    if len(got) != len(want) or got[0] != want[0]:
        return "shape_or_head", None
    wrong = [k for k in range(len(want)) if got[k] != want[k]]
    first = wrong[0]
    if (first - 1) % 3 != 1:  # not the cell's value digit: its divisor digit or its separator
        return "separator_or_divisor", None
    offset = (int(got[first]) - int(want[first])) % 10
    size = "one_digit" if len(wrong) == 1 else "several"
    return f"{size}_{'off_by_one' if offset in (1, 9) else 'other'}", offset


def strikes(generated: str, expected: list[str]) -> Counter:
    """`subfix`: what the model struck out, up to its first wrong line left standing. `struck_right`: a right line
    struck out (a false alarm); `struck_wrong`: a slip caught; `missed`: the first wrong line left standing; after a
    strike, `redo_right` or `redo_wrong` for the line written in its place."""
    lines, counts, at, after_strike = generated.split("\n"), Counter(), 0, False
    for i, line in enumerate(lines):
        if line == STRIKE or at >= len(expected):
            continue
        right = line == expected[at]
        if after_strike:
            counts["redo_right" if right else "redo_wrong"] += 1
        after_strike = i + 1 < len(lines) and lines[i + 1] == STRIKE
        if after_strike:
            counts["struck_right" if right else "struck_wrong"] += 1
        elif right:
            at += 1
        else:
            counts["missed"] += 1
            break
    return counts


def classify(folder: Path) -> dict:
    record = runs.read(folder)
    fmt_name = record["format"]
    if fmt_name not in ("subrow", "subdown", "subrand", "subfix"):  # 3-character cells and their answer row
        raise ValueError(f"{folder}: format {fmt_name}; slips reads subrow-like traces only")
    fmt = get_format("subrow" if fmt_name == "subfix" else fmt_name)  # subfix's traces without their slips
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    shapes, offsets, caught = Counter(), Counter(), Counter()
    for row in rows:
        if fmt_name == "subfix":
            caught += strikes(row["generated"], fmt.render(Problem.from_numbers(row["dividend"], row["divisor"]))[1]
                              .split("\n"))
        if row["error_kind"] != "subtraction":
            continue
        got = (struck(row["generated"]) if fmt_name == "subfix" else row["generated"]).split("\n")
        want = fmt.render(Problem.from_numbers(row["dividend"], row["divisor"]))[1].split("\n")
        what, offset = shape(got[row["error_step"]], want[row["error_step"]])
        shapes[what] += 1
        if offset is not None:
            offsets[offset] += 1
    total = sum(shapes.values())
    return {"run": str(folder), "format": fmt_name, "num_demos": record.get("num_demos"), "n_eval": len(rows),
            "correct": sum(r["correct"] for r in rows), "first_wrong_subtractions": total,
            "shapes": dict(shapes.most_common()), "value_digit_offsets": dict(sorted(offsets.items())),
            "one_digit_off_by_one_share": shapes["one_digit_off_by_one"] / total if total else None,
            **({"strikes": dict(sorted(caught.items()))} if fmt_name == "subfix" else {})}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("reports/slips.json"))
    args = parser.parse_args(argv)
    report = {"question": "what does the first wrong subtraction line of a trace look like?",
              "runs": [classify(folder) for folder in args.runs]}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for run in report["runs"]:
        print(run["run"], run["first_wrong_subtractions"], run["shapes"], run["value_digit_offsets"])


if __name__ == "__main__":
    main(sys.argv[1:])
