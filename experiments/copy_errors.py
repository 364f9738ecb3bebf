"""Where the answer row's and the bring-downs' wrong digits come from, in `subrow` and `subadd` traces.

    python -m experiments.copy_errors RUN_DIR [RUN_DIR ...] [--out reports/copy_errors.json]

Reads each run's predictions.jsonl (the verifier's first wrong step is in it) and, for the traces whose first wrong
step is the answer row or a bring-down, compares the wrong value digits with the lines above:

- answer row: `line_above` (every wrong digit is the one in the same cell of the line just above, the subtraction
  that went negative), `zero` (every wrong digit is a 0), `separator_only` (the digits are right, a separator is
  not), `other`;
- bring-down (after the first line): `dividend_digit` (the digit brought down, cell 0, is wrong), `unshifted` (some
  wrong digit is the kept value's digit of its own column rather than of the column before), `negative_line` (some
  wrong digit is a digit of the subtraction that went negative, in its own column or the one before), `other`.

Pure Python; no model.
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from longdiv import runs
from longdiv.data.formats import get_format
from longdiv.data.problems import Problem


def values(line: str) -> str:
    """The running value's digits of a line of 3-character cells, least significant first."""
    return line[2::3]


def answer_kind(got: str, above: str, want: str) -> str:
    wrong = [i for i, (g, w) in enumerate(zip(values(got), values(want))) if g != w]
    if not wrong:
        return "separator_only"
    if all(values(got)[i] == values(above)[i] for i in wrong):
        return "line_above"
    return "zero" if all(values(got)[i] == "0" for i in wrong) else "other"


def bring_down_kind(got: str, kept: str, negative: str, want: str) -> str:
    wrong = [i for i, (g, w) in enumerate(zip(values(got), values(want))) if g != w]
    if 0 in wrong:
        return "dividend_digit"
    if any(values(got)[i] == values(kept)[i] for i in wrong):
        return "unshifted"
    if any(values(got)[i] in (values(negative)[i], values(negative)[i - 1]) for i in wrong):
        return "negative_line"
    return "other"


def classify(folder: Path) -> dict:
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    fmt_name = runs.read(folder)["format"]
    if fmt_name not in ("subrow", "subadd"):  # the cell layout read below (3 characters, answer row) is theirs
        raise ValueError(f"{folder}: format {fmt_name}; copy_errors reads subrow and subadd traces only")
    fmt = get_format(fmt_name)
    counts = {"final_answer": Counter(), "bring_down": Counter()}
    for row in rows:
        kind, step = row["error_kind"], row["error_step"]
        if kind not in counts:
            continue
        got = row["generated"].split("\n")
        want = fmt.render(Problem.from_numbers(row["dividend"], row["divisor"]))[1].split("\n")
        if step == 0:  # the first bring-down works on the prompt's start line
            counts[kind]["first_line"] += 1
        elif len(got[step]) != len(want[step]) or got[step][0] != want[step][0]:
            counts[kind]["shape_or_head"] += 1
        elif kind == "final_answer":
            counts[kind][answer_kind(got[step], got[step - 1], want[step])] += 1
        else:  # the kept value is the line just above in `subadd` (the negative one above that), two up in `subrow`
            kept, negative = (step - 1, step - 2) if fmt.restore else (step - 2, step - 1)
            counts[kind][bring_down_kind(got[step], got[kept], got[negative], want[step])] += 1
    return {"run": str(folder), "format": fmt_name, "n_eval": len(rows), "correct": sum(r["correct"] for r in rows),
            **{kind: dict(sorted(c.items())) | {"total": sum(c.values())} for kind, c in counts.items()}}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("reports/copy_errors.json"))
    args = parser.parse_args(argv)
    report = {"question": "do the answer row's and the bring-downs' wrong digits come from the line just above?",
              "runs": [classify(folder) for folder in args.runs]}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for run in report["runs"]:
        print(run["run"], "answer:", run["final_answer"], "bring-down:", run["bring_down"])


if __name__ == "__main__":
    main(sys.argv[1:])
