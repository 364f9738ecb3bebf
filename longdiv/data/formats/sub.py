"""`sub`, `subrow`, `subtag`, `subcopy` and `subadd`: long division by repeated subtraction, every digit computed
from neighbours at fixed offsets.

The prompt is the question, the dividend's digits tagged with step labels, and a start line. Each line of the
trace has W = len(divisor) + 1 cells, least significant first. A cell is three characters: the divisor's digit,
the running value's digit, and a separator that says whether a borrow goes into the next cell ('-') or not
('.'). The last separator of a subtraction line is therefore the sign of the result. Lines start with a step
label (bring down that label's digit: the value becomes 10 * kept + digit) or '-' (subtract the divisor once).
A step subtracts until the result goes negative; the last non-negative value is kept. After the last digit, '='
repeats the kept value's digits (still least significant first); that is the remainder.

93 mod 59 (W = 3, divisor digits 9 5 0):

    What is the remainder when 93 is divided by 59?     <- prompt
    p9q3
    =90.50.00.
    p99.50.00.                                          <- completion: bring down 9, value 9
    -90.55-09-                                          9 - 59 < 0: keep 9
    q93.59.00.                                          bring down 3, value 93
    -94-53.00.                                          93 - 59 = 34
    -95-57-09-                                          34 - 59 < 0: keep 34
    =430                                                remainder 34

`subrow` is the same trace with one change to the last line: instead of the compact `=430`, it repeats the kept
line cell by cell under an 'R' head (`R94-53.00.`; not '=', which starts the prompt's last line), and the
remainder is read from its value digits. The kept line is always two lines above the answer (the line before the
subtraction that went negative), so every character of the answer is a copy from one fixed distance back. With
`=430`, SmolLM2 trained on 200 demonstrations wrote every step of 399 of 500 test traces right and then this line
wrong (accuracy 1.4%, reports/formats.json): it has to gather digits from every third position of a line it no
longer sits under. With the answer row it reached 85.8%.

`subtag` is `subrow` with separators that name their cell: cell i ends on the i-th letter, in upper case where a
borrow goes into the next cell (`R94A53b00c`). The trace is as long as `subrow`'s, and a digit's partner in the
line above can be found by its letter as well as by its distance, which depends on the divisor's length. With
`subrow`, SmolLM2 at N=200 was right on 91% of the test problems with 1-4 digit divisors but on 67% of those with
5-7, and the paper's training problems hold few long divisors. `subtag` did worse at every width: 71.0% against
85.8% (reports/formats.json).

`subcopy` is `subrow` with one more character at the start of every cell: the digit that cell works on, copied
from the line it comes from (`-394-953.000.` subtracts 59 from 93: cells `3 9 4 -`, `9 5 3 .`, `0 0 0 .`). A
subtraction cell then computes its digit from the three characters just before it (copied digit, divisor digit,
the borrow), and a bring-down cell copies the kept value's digit of its own column (from two lines up) and writes the
digit of the cell before it, so the shift by one place happens inside the line. Only copies reach far. Why: of
`subrow`'s first wrong steps at N=200, two thirds were subtraction digits, most of them a - d - b with the borrow b
flipped, and a third bring-downs (in those read, the kept digit of the wrong column). It costs a quarter more tokens
and did worse: 80.2% against 85.8% (reports/formats.json); the copies were right, the digits computed from them
slipped as often as before.

`subadd` is `subrow` with one more line after every subtraction that went negative: a '+' line adds the divisor
back, cell by cell (digit = the negative line's digit + the divisor's digit + the carry, separator '+' where a
carry goes into the next cell), which gives the kept value again. The next bring-down then shifts the line just
above it, and the last add-back line, under the 'R' head, is the answer (`R94+53+00+` for 93 mod 59). Why: with
`subrow` trained for 12 epochs on the CPU, the answer row was the first wrong step in 21 of 500 traces, 16 of them
with a wrong value digit, and 10 of those 16 took the digit of the negative line in between rather than of the
kept line two lines up (subtraction slips, which longer training cuts, were 29). An add-back line computes from the
line just above with the same offsets as a subtraction, the step the model learns best. Bring-downs also read
the line just above now, though most of their errors are not of that kind (an unshifted copy, or the wrong
dividend digit). It costs 18% more tokens (400 SmolLM2 tokens a demonstration of the paper's problems, against 339)
and did worse: 84.8% against 91.6% at 12 epochs (reports/recipe.json). The answer row went wrong less often (6
first errors against 21), but bring-downs far more (47 against 8; 15 of them the wrong dividend digit), and
subtractions a little more (41 against 29): in this run, bring-downs that read the kept value from the add-back
line just above, under separators of a new kind, went wrong far more often than those that read it two lines up
(reports/copy_errors.json).

Why this shape: each digit the model writes depends on tokens at fixed distances (the cell above, the borrow
just before it, the divisor digit inside the same cell), which is what a small model with relative position
embeddings learns from few examples. The quotient digit is never chosen by comparison: it is the number of
subtractions before the sign flips. The only look-up at a distance is the dividend digit, found by its label.
"""

from __future__ import annotations

import re

from longdiv.data.formats import register
from longdiv.data.problems import Problem

LABELS = "pqrstuvwxyzabcdefghijklmno"  # one letter per dividend digit, a single token each
TAGS = "abcdefghijklmno"  # `subtag`'s cell letters: lower case, no borrow out of the cell; upper case, a borrow
ANSWER_RE = re.compile(r"^=(\d{1,200})$", re.MULTILINE)
ROW_RE = re.compile(r"^R((?:\d\d[.a-oA-O-]){1,200})$", re.MULTILINE)
COPY_ROW_RE = re.compile(r"^R((?:\d\d\d[.-]){1,200})$", re.MULTILINE)
ADD_ROW_RE = re.compile(r"^R((?:\d\d[.+]){1,200})$", re.MULTILINE)


def digits_lsf(value: int, width: int) -> list[int]:
    """The `width` lowest digits of `value`, least significant first."""
    return [(value // 10**i) % 10 for i in range(width)]


def trace(problem: Problem) -> list[tuple[str, int, list[str]]]:
    """The lines of the completion as (head, value, separators), value being what the line shows."""
    m = problem.divisor
    width = len(str(m)) + 1
    lines = []
    kept = 0
    for label, digit in zip(LABELS, str(problem.dividend)):
        kept = 10 * kept + int(digit)
        lines.append((label, kept, ["."] * width))
        value = kept
        while True:
            seps, borrow = [], 0
            for a, b in zip(digits_lsf(value, width), digits_lsf(m, width)):
                borrow = int(a - b - borrow < 0)
                seps.append("-" if borrow else ".")
            value -= m
            lines.append(("-", value % 10**width, seps))
            if value < 0:
                break
            kept = value
    return lines


def restored(lines: list[tuple[str, int, list[str]]], width: int, divisor: int) -> list[tuple[str, int, list[str]]]:
    """`subadd`'s trace: after each subtraction that went negative, a '+' line adds the divisor back cell by cell
    (separator '+' where a carry goes into the next cell); the last of them, under an 'R' head, is the answer."""
    out = []
    for i, (head, value, seps) in enumerate(lines):
        out.append((head, value, seps))
        if head == "-" and (i + 1 == len(lines) or lines[i + 1][0] != "-"):  # the negative one
            marks, carry = [], 0
            for a, b in zip(digits_lsf(value, width), digits_lsf(divisor, width)):
                carry = int(a + b + carry >= 10)
                marks.append("+" if carry else ".")
            out.append(("R" if i + 1 == len(lines) else "+", lines[i - 1][1], marks))
    return out


def render_line(head: str, value: int, seps: list[str], divisor: int, tags: bool = False,
                operand: int | None = None) -> str:
    """One line of cells; with `operand` (`subcopy`), each cell starts with that number's digit."""
    width = len(seps)
    if tags:  # cell i's separator becomes its letter, upper case where a borrow goes on
        seps = [TAGS[i].upper() if sep == "-" else TAGS[i] for i, sep in enumerate(seps)]
    cells = [f"{d}{v}{s}" for d, v, s in zip(digits_lsf(divisor, width), digits_lsf(value, width), seps)]
    if operand is not None:
        cells = [f"{o}{cell}" for o, cell in zip(digits_lsf(operand, width), cells)]
    return head + "".join(cells)


def operands(lines: list[tuple[str, int, list[str]]]) -> list[int]:
    """`subcopy`'s copied number for each trace line: the kept value a bring-down shifts (its line's value // 10),
    or the value a subtraction starts from (the line above, never negative)."""
    return [value // 10 if head != "-" else lines[i - 1][1] for i, (head, value, _) in enumerate(lines)]


class Sub:
    def __init__(self, name: str = "sub", answer_row: bool = False, tags: bool = False, copy: bool = False,
                 restore: bool = False):
        """`answer_row`: end on a copy of the kept line (`subrow`) rather than the compact reversed digits.
        `tags`: separators name their cell (`subtag`). `copy`: each cell starts with a copy of the digit it works on
        (`subcopy`; implies the answer row). `restore`: add the divisor back after each negative subtraction, the
        last such line being the answer (`subadd`; implies the answer row)."""
        if (copy or restore) and (tags or not answer_row or (copy and restore)):
            raise ValueError("format sub: copy or restore goes with the answer row, alone and without tags")
        self.name = name
        self.answer_row = answer_row
        self.tags = tags
        self.copy = copy
        self.restore = restore
        self.cell = 4 if copy else 3  # characters per cell; the running value's digit is the cell's second last
        self.char_layout = True  # one token per character; the data module makes sure of it

    def render(self, problem: Problem) -> tuple[str, str]:
        if len(str(problem.dividend)) > len(LABELS):
            raise ValueError(f"format sub: dividend {problem.dividend} has more than {len(LABELS)} digits")
        m = problem.divisor
        width = len(str(m)) + 1
        if self.tags and width > len(TAGS):
            raise ValueError(f"format {self.name}: divisor {m} has more than {len(TAGS) - 1} digits")
        labels = "".join(f"{label}{d}" for label, d in zip(LABELS, str(problem.dividend)))
        start = render_line("=", 0, ["."] * width, m, self.tags, 0 if self.copy else None)
        prompt = f"{problem.question}\n{labels}\n{start}\n"
        lines = restored(trace(problem), width, m) if self.restore else trace(problem)
        copied = operands(lines) if self.copy else [None] * len(lines)
        body = [render_line(head, value, seps, m, self.tags, o) for (head, value, seps), o in zip(lines, copied)]
        if self.restore:
            return prompt, "\n".join(body) + "\n"  # the last add-back line is the answer
        if self.answer_row:
            answer = "R" + body[-2][1:]  # the kept line: the last one before the result went negative
        else:
            answer = "=" + "".join(str(d) for d in digits_lsf(problem.remainder, width))
        return prompt, "\n".join([*body, answer]) + "\n"

    def parse(self, text: str) -> int | None:
        if self.answer_row:
            match = (COPY_ROW_RE if self.copy else ADD_ROW_RE if self.restore else ROW_RE).search(text)
            return int(match[1][self.cell - 2 :: self.cell][::-1]) if match else None
        match = ANSWER_RE.search(text)
        return int(match[1][::-1]) if match else None


register(Sub())
register(Sub("subrow", answer_row=True))
register(Sub("subtag", answer_row=True, tags=True))
register(Sub("subcopy", answer_row=True, copy=True))
register(Sub("subadd", answer_row=True, restore=True))
