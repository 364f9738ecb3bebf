"""Step-by-step checking of generated completions, for error analysis.

`verify(format_name, problem, completion)` returns the first wrong step and its kind. It never decides accuracy
(the format's `parse` does); it says *why* a trace went wrong. Kinds:

- `malformed`: a line that does not have the format's shape, or a trace that stops early
- `bring_down`: the wrong dividend digit brought down, or the kept value shifted wrongly
- `quotient_digit`: subtracted once too often or stopped too early (the quotient digit would be wrong)
- `subtraction`: a wrong digit or borrow inside a subtraction, or (`subadd`) inside a line that adds the divisor back
- `final_answer`: every step right but the answer line wrong (or, for formats without steps, a wrong answer)

For `sub`, `subrow`, `subtag`, `subcopy` and `subadd`, the expected trace is rebuilt from the problem and compared
line by line. Formats without a step verifier (`direct`, the paper's grid) get the coarse verdict: right answer, wrong
answer, or no answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longdiv.data import formats
from longdiv.data.formats.sub import Sub
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


def _verify_sub(fmt: Sub, problem: Problem, completion: str) -> Verdict:
    expected = fmt.render(problem)[1].splitlines()
    width = len(str(problem.divisor)) + 1
    # `subtag`'s separators are cell letters; `subadd`'s add-back lines mark a carry with '+'.
    sep = "[a-oA-O]" if fmt.tags else "[.+-]" if fmt.restore else "[.-]"
    cell = rf"\d{{{fmt.cell - 1}}}{sep}"  # digits, then the separator: 2 digits, or 3 in `subcopy`
    heads = r"[a-z]|-|\+" if fmt.restore else r"[a-z]|-"
    step_line = re.compile(rf"^({heads})({cell}){{{width}}}$")
    # `sub` answers in digits, the others in a step line's cells.
    answer_line = re.compile(rf"^R({cell}){{{width}}}$" if fmt.answer_row else rf"^=\d{{{width}}}$")
    got = completion.splitlines()
    for step, want in enumerate(expected):
        if step >= len(got):
            return Verdict("malformed", step)
        line = got[step]
        if line == want:
            continue
        # At the last step the answer line and a step line can stand where the other belongs: that is one
        # subtraction too many or too few, not a wrong answer or a broken line.
        if want[0] in "=R":
            if step_line.match(line) and line[0] != "+":
                return Verdict("quotient_digit" if line[0] == "-" else "bring_down", step)
            return Verdict("final_answer", step)
        if want[0] == "-" and answer_line.match(line):
            return Verdict("quotient_digit", step)
        if want[0] == "+" and answer_line.match(line):  # `subadd` answered with dividend digits left
            return Verdict("bring_down", step)
        if not step_line.match(line):
            return Verdict("malformed", step)
        if want[0] == "-":
            return Verdict("quotient_digit" if line[0] != "-" else "subtraction", step)
        if want[0] == "+" and line[0] == "+":
            return Verdict("subtraction", step)
        return Verdict("quotient_digit" if line[0] == "-" else "bring_down", step)
    return Verdict()


def verify(format_name: str, problem: Problem, completion: str) -> Verdict:
    """Checks `completion` for `problem` in the format called `format_name`; never raises on any text."""
    fmt = formats.get_format(format_name)
    if isinstance(fmt, Sub):
        return _verify_sub(fmt, problem, completion)
    parsed = fmt.parse(completion)
    if parsed is None:
        return Verdict("malformed", None)
    return Verdict() if parsed == problem.remainder else Verdict("final_answer", None)
