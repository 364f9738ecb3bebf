"""Scoring one evaluation problem from the traces generated for it.

`score(fmt, problem, index, samples)` reads each sample's claimed remainder with the format's `parse`, takes the
remainder most samples give (a tie goes to the one given first; samples that claim none do not vote), keeps the
first sample that gives it, and checks that trace with the format's `verify`. With one greedy sample this is just
parse and verify. The result is the problem's record, as evaluation keeps it and run folders store it:

    {"index": 7, "question": "What is the remainder when 93 is divided by 59?", "dividend": 93, "divisor": 59,
     "expected": 34, "generated": "= 34\\n", "parsed": 34, "correct": True, "error_kind": None, "error_step": None}

and, with more than one sample, `"votes"`: every sample's parsed answer in order (None where it claims none).
"""

from __future__ import annotations

from collections import Counter

from longdiv.data.formats.base import Format
from longdiv.data.problems import Problem


def score(fmt: Format, problem: Problem, index: int, samples: list[str]) -> dict:
    """The record of `problem` (its position `index` in its evaluation set) from the `samples` generated for it."""
    if not samples:
        raise ValueError(f"problem {index} ({problem.question!r}) has no generated samples to score; pass at least one")
    answers = [fmt.parse(text) for text in samples]
    given = Counter(a for a in answers if a is not None)
    parsed = given.most_common(1)[0][0] if given else None  # most_common keeps first-seen order on ties
    text = samples[answers.index(parsed)]
    verdict = fmt.verify(problem, text)
    return {
        "index": index, "question": problem.question, "dividend": problem.dividend, "divisor": problem.divisor,
        "expected": problem.remainder, "generated": text, "parsed": parsed, "correct": parsed == problem.remainder,
        "error_kind": verdict.kind, "error_step": verdict.step, **({"votes": answers} if len(samples) > 1 else {}),
    }
