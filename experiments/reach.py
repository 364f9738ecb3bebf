"""What the paper's `look` actions can see through a sliding window (issue 41): reports/paper_reach.json.

    python -m experiments.reach [--variants l+ ln+] [--contexts 2048 4096 8192] [--problems train val]

A `look` writes out cells of the grid with their contents (`look 06,02:201 6`), so to write it right the model must
know what was last written in each of those cells. In the reference traces of the paper's problems (tokenized with
SmolLM2's tokenizer, as training and generation read them), each looked-at cell is placed by where its content is
when the model writes the look, in the window `longdiv.data.windows` gives at that token:
- `window`: the completion tokens the window still shows hold the cell's content (its last write, or a later look
  at it);
- `prompt`: they do not, but the cell still holds what the copy of the problem onto row 2 put there, and the
  question in the prompt (always kept) holds the same digits;
- `gone`: neither: nothing in view holds it, and the model can only recall it.
Each row counts the looked-at cells of each kind by the cell's part of the grid (`quotient` row 1, `problem` row 2,
`work` rows below it, `scratch` from x=70), the traces with none `gone`, and how far back (in completion tokens) a
`gone` cell's content was last shown.
No model is trained or run: the traces, the tokenizer and the window alone.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import sys
from collections import Counter
from pathlib import Path

from experiments import paper, runner
from longdiv.data.formats import get_format
from longdiv.data.formats.recchia import SCRATCH_X
from longdiv.data.problems import read_file
from longdiv.data.windows import windows
from longdiv.models.loading import load_tokenizer

OUT = Path("reports/paper_reach.json")
QUESTION = "what the paper's looks can see: each looked-at cell's content, in the window, in the prompt, or gone"
PROBLEMS = {"train": runner.PAPER_TRAIN, "val": runner.PAPER_VAL}


def part(x: int, y: int) -> str:
    """The part of the grid a cell is in."""
    return "scratch" if x >= SCRATCH_X else "quotient" if y == 1 else "problem" if y == 2 else "work"


def reach(prompt: str, completion: str, tokenizer, context: int) -> list[tuple[str, str, int]]:
    """(where, part, tokens back) for every cell of every look in `completion`: where its content is when the
    look's value token is written (`window`, `prompt` or `gone`), the cell's part of the grid, and how many
    completion tokens back its content was last shown."""
    encoded = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    starts = [start for start, _ in encoded["offset_mapping"]]
    room = context - len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    cuts = windows(len(starts) + 1, room)  # the end-of-text token after the completion too, as training has it
    news = [new for _, new, _ in cuts]

    def token(char: int) -> int:  # the token that holds character `char` of the completion
        return bisect.bisect_right(starts, char) - 1

    shown: dict[tuple[int, int], int] = {}  # cell -> the last token that showed its content (a write or a look)
    copied: set[tuple[int, int]] = set()  # cells whose content is still the copy's (the question in the prompt)
    found = []
    for i, action in enumerate(paper.ACTION.finditer(completion)):
        looks = action[0].startswith("look")
        for cell in paper.CELL.finditer(completion, action.start(), action.end()):
            where_, at = (int(cell[1]), int(cell[2])), token(cell.start(3))
            if looks:
                window_start = cuts[bisect.bisect_right(news, at) - 1][0]
                where = "window" if shown[where_] >= window_start else "prompt" if where_ in copied else "gone"
                found.append((where, part(*where_), at - shown[where_]))
            elif i == 0:
                copied.add(where_)
            else:
                copied.discard(where_)
            shown[where_] = at
    return found


def measure(variant: str, context: int, problems_name: str, tokenizer) -> dict:
    fmt = get_format(f"recchia-{variant}")
    counts, back, traces_clear, looks_per_trace = Counter(), [], 0, []
    problems = read_file(PROBLEMS[problems_name])
    for problem in problems:
        found = reach(*fmt.render(problem), tokenizer, context)
        counts.update((where, part_) for where, part_, _ in found)
        back += [distance for where, _, distance in found if where == "gone"]
        traces_clear += all(where != "gone" for where, _, _ in found)
        looks_per_trace.append(len(found))
    total = sum(counts.values())
    by_where = Counter()
    for (where, _), n in counts.items():
        by_where[where] += n
    return {"variant": variant, "format": fmt.name, "context": context, "problems": problems_name,
            "n_traces": len(problems), "looked_cells": total,
            "where": {w: by_where[w] for w in ("window", "prompt", "gone")},
            "gone_share": round(by_where["gone"] / total, 4) if total else None,
            "by_part": {p: {w: counts[(w, p)] for w in ("window", "prompt", "gone") if counts[(w, p)]}
                        for p in ("quotient", "problem", "work", "scratch") if any(counts[(w, p)] for w in
                                                                                     ("window", "prompt", "gone"))},
            "traces_with_nothing_gone": traces_clear,
            "gone_tokens_back": {"median": statistics.median(back), "max": max(back)} if back else None,
            "mean_looked_cells_per_trace": round(statistics.mean(looks_per_trace), 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["l+", "ln+"], choices=["l+", "ln+"],
                        help="the variants with looks (W has none)")
    parser.add_argument("--contexts", nargs="+", type=int, default=[2048, 4096, 8192])
    parser.add_argument("--problems", nargs="+", default=["train", "val"], choices=list(PROBLEMS))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    tokenizer = load_tokenizer("smollm2")
    records = [measure(v, c, p, tokenizer) for v in args.variants for c in args.contexts for p in args.problems]
    for r in records:
        print(f"{r['format']} at {r['context']} ({r['problems']}): {r['where']}, traces with nothing gone "
              f"{r['traces_with_nothing_gone']}/{r['n_traces']}")
    runner.update_report(OUT, records, lambda r: (r["variant"], r["context"], r["problems"]), question=QUESTION,
                         command="python -m experiments.reach")


if __name__ == "__main__":
    main()
