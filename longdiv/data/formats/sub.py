"""`sub`, `subrow`, `subtag`, `subcopy`, `subadd`, `subrand`, `subdown` and `subfix`: long division by repeated
subtraction, every digit computed from neighbours at fixed offsets.

The prompt is the question, the dividend's digits tagged with step labels, and a start line. Each line of the
trace has W = len(divisor) + 1 cells, least significant first. A cell is three characters: the divisor's digit,
the running value's digit, and a separator that says whether a borrow goes into the next cell ('-') or not
('.'). The last separator of a subtraction line is therefore the sign of the result. Lines start with a step
label (bring down that label's digit: the value becomes 10 * kept + digit) or '-' (subtract the divisor once).
A step subtracts until the result goes negative; the last non-negative value is kept. After the last digit, '='
repeats the kept value's digits (still least significant first); that is the remainder.

`sub`, 93 mod 59 (W = 3, divisor digits 9 5 0):

    What is the remainder when 93 is divided by 59?     <- prompt
    p9q3
    =90.50.00.
    p99.50.00.                                          <- completion: bring down 9, value 9
    -90.55-09-                                          9 - 59 < 0: keep 9
    q93.59.00.                                          bring down 3, value 93
    -94-53.00.                                          93 - 59 = 34
    -95-57-09-                                          34 - 59 < 0: keep 34
    =430                                                remainder 34

The variants change that trace as below; each shows its completion for 93 mod 59 after the same first two prompt
lines and a start line in its own cells.

`subrow` ends on a copy of the kept line, cell by cell under an 'R' head (not '=', which starts the prompt's last
line), instead of the compact `=430`; the remainder is read from its value digits. The kept line is always two
lines above the answer (the line before the subtraction that went negative), so every character of the answer is a
copy from one fixed distance back. Writing `=430`, the model has to gather digits from every third position of a
line it no longer sits under, and that last line is where traces with every step right went wrong.

    =90.50.00.                                          <- start line
    p99.50.00.
    -90.55-09-
    q93.59.00.
    -94-53.00.
    -95-57-09-
    R94-53.00.                                          the kept line: 34

`subtag` is `subrow` with separators that name their cell: cell i ends on the i-th letter, in upper case where a
borrow goes into the next cell. A digit's partner in the line above can then be found by its letter as well as by
its distance, which depends on the divisor's length: `subrow` went wrong more often on long divisors, of which the
paper's training problems hold few.

    =90a50b00c                                          <- start line
    p99a50b00c
    -90a55B09C
    q93a59b00c
    -94A53b00c
    -95A57B09C
    R94A53b00c

`subcopy` is `subrow` with one more character at the start of every cell: the digit that cell works on, copied
from the line it comes from. A subtraction cell then computes its digit from the three characters just before it
(copied digit, divisor digit, the borrow), and a bring-down cell copies the kept value's digit of its own column
(from two lines up) and writes the digit of the cell before it, so the shift by one place happens inside the line.
Only copies reach far. Why: most of `subrow`'s first wrong steps were subtraction digits a - d - b with the borrow
b flipped, and the rest mostly bring-downs that read the kept digit of the wrong column. It costs more tokens.

    =090.050.000.                                       <- start line
    p099.050.000.
    -990.055-009-
    q993.059.000.
    -394-953.000.                                       cells 3 9 4 -, 9 5 3 ., 0 0 0 .: 93 - 59 = 34
    -495-357-009-
    R394-953.000.

`subadd` is `subrow` with one more line after every subtraction that went negative: a '+' line adds the divisor
back, cell by cell (digit = the negative line's digit + the divisor's digit + the carry, separator '+' where a
carry goes into the next cell), which gives the kept value again. The next bring-down then shifts the line just
above it, and the last add-back line, under the 'R' head, is the answer. Why: where `subrow`'s answer row went
wrong, it mostly took a digit of the negative line in between rather than of the kept line two lines up. An
add-back line computes from the line just above with the same offsets as a subtraction, the step the model learns
best, and bring-downs read the line just above too. It costs more tokens.

    =90.50.00.                                          <- start line
    p99.50.00.
    -90.55-09-                                          9 - 59 < 0
    +99.50+00+                                          add 59 back: 9 again
    q93.59.00.
    -94-53.00.
    -95-57-09-                                          34 - 59 < 0
    R94+53+00+                                          add 59 back: 34, the answer

`subrand` is `subrow` with the dividend's digits labelled in an order drawn for each problem (the same every time
that problem is rendered) rather than p, q, r, ... in turn. With labels in a fixed order a model can bring down the
k-th digit and stop after the last by counting lines, and the paper's training dividends never pass 8 digits, so
it learns to stop after 8 at most: to find the next label, and to know there is none, it now has to read the
prompt. Its label line comes first here:

    c9p3                                                <- the prompt's labels
    =90.50.00.
    c99.50.00.
    -90.55-09-
    p93.59.00.
    -94-53.00.
    -95-57-09-
    R94-53.00.

`subdown` is `subrow` with the labels counting down the alphabet to `a`, the last digit's label whatever the
dividend's length: the trace stops after bringing down `a`, a rule that reads the content, and each next label is
the letter before the last one, which a pretrained model knows for letters it never saw as labels.

    b9a3                                                <- the prompt's labels
    =90.50.00.
    b99.50.00.
    -90.55-09-
    a93.59.00.
    -94-53.00.
    -95-57-09-
    R94-53.00.

`subfix` is `subrow` in which about one step line in five (drawn per problem, the same every time it is rendered)
is first written with one value digit off by one, as the model's own slips mostly are, then struck out by a line
`!` and written right. The wrong lines are not learned (`untrained`); the `!` after them and the right line are. The
model learns to catch a slip it has just written and to write the line again: its own check, on its own text.
Parsing and verifying read a trace with every struck-out line and its `!` removed.

    =90.50.00.                                          <- start line
    p90.50.00.                                          a slip (not learned): 0 for 9
    !                                                   struck out
    p99.50.00.
    -90.55-09-
    q93.59.00.
    -94-54.00.                                          another: 4 for 3
    !
    -94-53.00.
    -95-57-09-
    R94-53.00.

Why this shape: each digit the model writes depends on tokens at fixed distances (the cell above, the borrow
just before it, the divisor digit inside the same cell), which is what a small model with relative position
embeddings learns from few examples. The quotient digit is never chosen by comparison: it is the number of
subtractions before the sign flips. The only look-up at a distance is the dividend digit, found by its label.
Every one of these formats needs one token per character (`char_layout`).

`Sub.verify` rebuilds the expected trace and compares it line by line; the first line that differs is the wrong
step, and its kind comes from what that line should do and what the written one does. How each variant fared
against the others is measured in docs/formats.md.
"""

from __future__ import annotations

import random
import re

from longdiv.data.formats.base import register
from longdiv.data.problems import Problem
from longdiv.data.verify import Verdict

LABELS = "pqrstuvwxyzabcdefghijklmno"  # one letter per dividend digit, a single token each; cycled past 26 digits
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
TAGS = "abcdefghijklmno"  # `subtag`'s cell letters: lower case, no borrow out of the cell; upper case, a borrow
ANSWER_RE = re.compile(r"^=(\d{1,200})$", re.MULTILINE)
ROW_RE = re.compile(r"^R((?:\d\d[.a-oA-O-]){1,200})$", re.MULTILINE)
COPY_ROW_RE = re.compile(r"^R((?:\d\d\d[.-]){1,200})$", re.MULTILINE)
ADD_ROW_RE = re.compile(r"^R((?:\d\d[.+]){1,200})$", re.MULTILINE)
STRIKE = "!"  # `subfix`: a line that strikes out the line above it

# The kind of a wrong line, from what the line should do and what the written one does; a pair not here is a broken
# line ('malformed'), or a wrong answer where the answer belongs ('final_answer'). A step line where the answer
# belongs, or the answer where a subtraction or add-back belongs, is one subtraction too many or too few (a quotient
# digit), or a dividend digit left out or brought down too many (a bring-down); the answer where a bring-down belongs
# counts as malformed.
STEP_ERRORS = {
    ("answer", "-"): "quotient_digit", ("answer", "label"): "bring_down",
    ("-", "-"): "subtraction", ("-", "+"): "quotient_digit", ("-", "label"): "quotient_digit",
    ("-", "answer"): "quotient_digit",
    ("+", "+"): "subtraction", ("+", "-"): "quotient_digit", ("+", "label"): "bring_down",
    ("+", "answer"): "bring_down",
    ("label", "-"): "quotient_digit", ("label", "+"): "bring_down", ("label", "label"): "bring_down",
}


def digits_lsf(value: int, width: int) -> list[int]:
    """The `width` lowest digits of `value`, least significant first."""
    return [(value // 10**i) % 10 for i in range(width)]


def labels(problem: Problem, order: str = "fixed") -> list[str]:
    """The label of each dividend digit. `fixed`: LABELS in turn. `shuffled` (`subrand`): LABELS in an order drawn
    for this problem, the same every time it is rendered. `countdown` (`subdown`): the alphabet backwards, ending on
    `a` at the last digit. Labels cycle past 26 digits; a line's label names the next digit after the last one
    brought down that has it, so no length is refused."""
    digits = len(str(problem.dividend))
    if order == "countdown":
        return [ALPHABET[(digits - 1 - i) % len(ALPHABET)] for i in range(digits)]
    chosen = list(LABELS)
    if order == "shuffled":
        random.Random(f"labels {problem.dividend} {problem.divisor}").shuffle(chosen)
    return [chosen[i % len(chosen)] for i in range(digits)]


def trace(problem: Problem, order: str = "fixed") -> list[tuple[str, int, list[str]]]:
    """The lines of the completion as (head, value, separators), value being what the line shows."""
    m = problem.divisor
    width = len(str(m)) + 1
    lines = []
    kept = 0
    for label, digit in zip(labels(problem, order), str(problem.dividend)):
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


def slipped(lines: list[str], rate: float, key: str) -> tuple[list[str], list[int]]:
    """`subfix`: each step line (a bring-down or a subtraction) with probability `rate` is preceded by a copy with one
    cell's value digit off by one, and a STRIKE line; drawn from `key`. Returns the lines and the indices of the
    wrong copies."""
    rng = random.Random(f"slips {key}")
    out, wrong = [], []
    for line in lines:
        if line[0] not in "R=" and rng.random() < rate:
            at = 2 + 3 * rng.randrange((len(line) - 1) // 3)  # a cell's value digit: head, divisor digit, value
            digit = str((int(line[at]) + rng.choice((-1, 1))) % 10)
            wrong.append(len(out))
            out += [line[:at] + digit + line[at + 1 :], STRIKE]
        out.append(line)
    return out, wrong


def struck(text: str) -> str:
    """`text` without its STRIKE lines and the line each strikes out."""
    kept: list[str] = []
    for line in text.split("\n"):
        if line == STRIKE:
            if kept:
                kept.pop()
        else:
            kept.append(line)
    return "\n".join(kept)


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
    char_layout = True  # digits are found at fixed distances in characters: one token per character
    # Digits, separators, line heads (labels, '-', '+', 'R', '='), `subtag`'s cell letters and the newline.
    alphabet = "0123456789.-+=R\n" + ALPHABET + TAGS.upper()
    lexicon = None

    def __init__(self, name: str = "sub", answer_row: bool = False, tags: bool = False, copy: bool = False,
                 restore: bool = False, order: str = "fixed", slips: float = 0.0):
        """`answer_row`: end on a copy of the kept line (`subrow`) rather than the compact reversed digits.
        `tags`: separators name their cell (`subtag`). `copy`: each cell starts with a copy of the digit it works on
        (`subcopy`; implies the answer row). `restore`: add the divisor back after each negative subtraction, the
        last such line being the answer (`subadd`; implies the answer row). `order`: how the dividend's digits are
        labelled (see `labels`). `slips`: the share of step lines first written wrong and struck out (`subfix`;
        with the answer row alone)."""
        if (copy or restore) and (tags or not answer_row or (copy and restore)):
            raise ValueError("format sub: copy or restore goes with the answer row, alone and without tags")
        self.name = name
        self.answer_row = answer_row
        self.tags = tags
        self.copy = copy
        self.restore = restore
        if order not in ("fixed", "shuffled", "countdown"):
            raise ValueError(f"format {name}: label order {order!r} is unknown")
        self.order = order
        if slips and (tags or copy or restore or not answer_row):
            raise ValueError(f"format {name}: slips go with the plain answer row")
        self.slips = slips
        self.strike = STRIKE if slips else None  # the line with which the model strikes out the line above
        self.alphabet = Sub.alphabet + (STRIKE if slips else "")
        self.cell = 4 if copy else 3  # characters per cell; the running value's digit is the cell's second last

    def render(self, problem: Problem) -> tuple[str, str]:
        prompt, completion = self._render(problem)
        if self.slips:
            lines, _ = slipped(completion.splitlines(), self.slips, f"{problem.dividend} {problem.divisor}")
            completion = "\n".join(lines) + "\n"
        return prompt, completion

    def untrained(self, problem: Problem) -> list[tuple[int, int]]:
        """The (start, end) character spans of the completion that are not learned: `subfix`'s wrong lines."""
        if not self.slips:
            return []
        key = f"{problem.dividend} {problem.divisor}"
        lines, wrong = slipped(self._render(problem)[1].splitlines(), self.slips, key)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)
        return [(starts[i], starts[i] + len(lines[i])) for i in wrong]

    def _render(self, problem: Problem) -> tuple[str, str]:
        """The prompt and the completion without slips."""
        m = problem.divisor
        width = len(str(m)) + 1
        if self.tags and width > len(TAGS):
            raise ValueError(f"format {self.name}: divisor {m} has more than {len(TAGS) - 1} digits")
        tagged = "".join(f"{label}{d}" for label, d in zip(labels(problem, self.order), str(problem.dividend)))
        start = render_line("=", 0, ["."] * width, m, self.tags, 0 if self.copy else None)
        prompt = f"{problem.question}\n{tagged}\n{start}\n"
        lines = trace(problem, self.order)
        lines = restored(lines, width, m) if self.restore else lines
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
        text = struck(text) if self.slips else text
        if self.answer_row:
            match = (COPY_ROW_RE if self.copy else ADD_ROW_RE if self.restore else ROW_RE).search(text)
            return int(match[1][self.cell - 2 :: self.cell][::-1]) if match else None
        match = ANSWER_RE.search(text)
        return int(match[1][::-1]) if match else None

    def quotient(self, text: str) -> int | None:
        """Each bring-down line (a lower-case label) starts a quotient digit: the count of subtraction lines after
        it, less the one that went below zero (add-back and struck-out lines aside)."""
        digits, count = [], None
        for line in (struck(text) if self.slips else text).splitlines():
            head = line[:1]
            if head.islower():
                if count is not None:
                    digits.append(count - 1)
                count = 0
            elif head == "-" and count is not None:
                count += 1
            elif head in ("R", "="):
                break
        if count is None:
            return None
        digits.append(count - 1)
        return int("".join(map(str, digits))) if all(0 <= d <= 9 for d in digits) else None

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """The first line of `completion` that differs from the expected trace, and its kind (see `STEP_ERRORS`);
        a trace that stops early is malformed at the first missing line. Never raises on any text."""
        expected = self._render(problem)[1].splitlines()
        completion = struck(completion) if self.slips else completion
        width = len(str(problem.divisor)) + 1
        # `subtag`'s separators are cell letters; `subadd`'s add-back lines mark a carry with '+'.
        sep = "[a-oA-O]" if self.tags else "[.+-]" if self.restore else "[.-]"
        cell = rf"\d{{{self.cell - 1}}}{sep}"  # digits, then the separator: 2 digits, or 3 in `subcopy`
        heads = r"[a-z]|-|\+" if self.restore else r"[a-z]|-"
        step_line = re.compile(rf"^({heads})({cell}){{{width}}}$")
        # `sub` answers in digits, the others in a step line's cells.
        answer_line = re.compile(rf"^R({cell}){{{width}}}$" if self.answer_row else rf"^=\d{{{width}}}$")

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
                return Verdict(STEP_ERRORS.get((wanted, head(got[step])), default), step)
        return Verdict()


register(Sub())
register(Sub("subrow", answer_row=True))
register(Sub("subtag", answer_row=True, tags=True))
register(Sub("subcopy", answer_row=True, copy=True))
register(Sub("subadd", answer_row=True, restore=True))
register(Sub("subrand", answer_row=True, order="shuffled"))
register(Sub("subdown", answer_row=True, order="countdown"))
register(Sub("subfix", answer_row=True, slips=0.2))
