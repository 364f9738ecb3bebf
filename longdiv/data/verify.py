"""The verdict a format's step checker gives a generated completion, and the kinds of error shared by all formats.

A format's `verify(problem, completion)` returns the first wrong step and its kind. It never decides accuracy (the
format's `parse` does); it says *why* a trace went wrong. Kinds:

- `malformed`: a line that does not have the format's shape, or a trace that stops early
- `bring_down`: the wrong dividend digit brought down, or the kept value shifted wrongly
- `quotient_digit`: subtracted once too often or stopped too early (the quotient digit would be wrong)
- `subtraction`: a wrong digit or borrow inside a subtraction, or inside a line that adds the divisor back
- `final_answer`: every step right but the answer line wrong (or, for formats without steps, a wrong answer)

Formats that check no steps (`direct`, the paper's grid) give `answer_verdict`: right answer, wrong answer, or no
answer. This module knows no format; the formats import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from longdiv.data.problems import Problem

KINDS = ("malformed", "bring_down", "quotient_digit", "subtraction", "final_answer")


@dataclass(frozen=True)
class Verdict:
    """`kind` is None when the trace is right; `step` is the 0-based line of the completion that went wrong."""

    kind: str | None = None
    step: int | None = None

    @property
    def ok(self) -> bool:
        return self.kind is None


def answer_verdict(problem: Problem, parsed: int | None) -> Verdict:
    """The coarse verdict from the remainder a completion claims: none claimed is malformed, a wrong one is a wrong
    final answer; neither names a step."""
    if parsed is None:
        return Verdict("malformed", None)
    return Verdict() if parsed == problem.remainder else Verdict("final_answer", None)
