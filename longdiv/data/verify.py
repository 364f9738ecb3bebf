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


# The kind of a wrong line of the `sub` family, from what the line should do and what the written one does; a pair
# not here is a broken line ('malformed'), or a wrong answer where the answer belongs ('final_answer'). A step line
# where the answer belongs, or the answer where a subtraction or add-back belongs, is one subtraction too many or
# too few (a quotient digit), or a dividend digit left out or brought down too many (a bring-down); the answer where a
# bring-down belongs counts as malformed.
_STEP_ERRORS = {
    ("answer", "-"): "quotient_digit", ("answer", "label"): "bring_down",
    ("-", "-"): "subtraction", ("-", "+"): "quotient_digit", ("-", "label"): "quotient_digit",
    ("-", "answer"): "quotient_digit",
    ("+", "+"): "subtraction", ("+", "-"): "quotient_digit", ("+", "label"): "bring_down", ("+", "answer"): "bring_down",
    ("label", "-"): "quotient_digit", ("label", "+"): "bring_down", ("label", "label"): "bring_down",
}


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

    def head(line: str) -> str | None:
        """What a line does: 'answer', '-' (subtract), '+' (add back), 'label' (bring down); None if broken."""
        if answer_line.match(line):
            return "answer"
        if step_line.match(line):
            return line[0] if line[0] in "-+" else "label"
        return None

    got = completion.splitlines()
    for step, want in enumerate(expected):
        if step >= len(got):
            return Verdict("malformed", step)
        if got[step] != want:
            wanted = head(want)
            default = "final_answer" if wanted == "answer" else "malformed"
            return Verdict(_STEP_ERRORS.get((wanted, head(got[step])), default), step)
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
