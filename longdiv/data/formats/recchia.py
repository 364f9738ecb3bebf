"""`recchia-*`: the paper's demonstrations (Recchia 2021), a person doing long division on squared paper.

The prompt is 50 separator characters `ì` and the question spelled one character at a time, each character
preceded by its position in its word (201, 202, ...; a space is `200 _`), then ` | `. The completion is a list of
actions on a grid and the claim `{ final remainder is D D }`. The W variant of 93 mod 59, in full:

    ìììììììììììììììììììììììììììììììììììììììììììììììììì 201 C 202 a 203 l 204 c 205 u 206 l 207 a 208 t
    209 e 200 _ 201 t 202 h 203 e 200 _ ... 201 b 202 y 200 _ 201 5 202 9 203 . 200 _ |    <- prompt
    write 00,02:201 5 01,02:202 9 02,02:203 ſ 03,02:201 9 04,02:202 3    59ſ93 on row 2
    write 04,01:201 0                                                  quotient digit 0 above the 3
    clear                                                              wipe the scratch area (x >= 70)
    write 71,00:201 _ 72,00:201 0 70,01:201 + 71,01:201 5 72,01:202 9  running sum 0, then +59 below it
    write 72,02:201 9                                                  0 + 9 = 9, right to left
    write 71,02:201 5                                                  _ + 5 = 5; sum 59 fits in 93
    write 04,01:201 1 70,03:201 + 71,03:201 5 72,03:202 9              quotient digit 1, add 59 again
    write 72,04:201 8                                                  9 + 9 = 18, carry the 1
    write 71,04:201 1                                                  5 + 5 + 1 = 11, carry the 1
    write 70,04:201 1                                                  sum 118 does not fit in 93
    write 02,03:201 -                                                  so subtract the last sum, 59
    write 03,03:201 5 04,03:202 9
    write 03,02:201 8                                                  3 < 9: borrow, the 9 becomes 8
    write 04,04:201 4                                                  13 - 9 = 4
    write 03,04:201 3                                                  8 - 5 = 3
    { final remainder is 3 4 }

Variants (registered names): `recchia-ln+` keeps every action: writes, looks (`look <cells>` reads cells back)
and narration in braces, which names the cells it reasons about (`{ 72,00:201 0 + 72,01:201 9 = 9 }`).
`recchia-l+` drops the narration, `recchia-w` also drops the looks (the trace above), and `recchia-bare` keeps
no action at all: the prompt, then the claim. The claim ends every variant.

Rules, from the paper's note and its W example; where they were silent the choice is marked (chosen):
- Cells are `xx,yy:TAG C` with zero-padded coordinates that simply grow to three digits past 99 (chosen). A
  cell's tag is its position in a word of the action that names it: a digit, or the bracket `ſ`, continues the
  word of a digit written just left of it on the same row in the same action; any other cell starts a word at
  201. So `+`, `-` and `_` (blank) are always 201, a digit written alone is 201, and looks are tagged the same way.
- The first current number is the dividend's first len(divisor) digits, one more if those are smaller than the
  divisor, or the whole dividend if it is shorter (chosen). Its quotient digit sits on row 1 above its last digit.
- Multiples are built in a scratch area from x=70 (further right, at the next multiple of 10 past the problem,
  when the problem's row would reach it; chosen): row 0 holds the starting sum 0, each odd row `+` and the
  divisor, each even row the new sum, written right to left with carries; the carry column is x=70 itself.
  After each sum the current number is compared with it; while it fits, the quotient digit goes up by one and
  the divisor is added again. The first sum that does not fit ends the digit.
- The last fitting sum is subtracted right to left below the current number, `-` left of it, with the
  difference two rows down. A borrow takes 1 from the nearest non-zero digit to the left, turning the zeros it
  passes into 9 (chosen), by overwriting those digits in place. Leading zeros of the difference are then erased
  with `_`; its last digit stays (chosen).
- A quotient digit of 0 subtracts nothing: the current number stays on its row (chosen). Bringing down copies the
  next dividend digit onto the current number's row, in its own column; a current number of 0 is erased in the
  same write, so a current number never has a leading zero (chosen).
- Narration (LN+ only, chosen in its wording where the note gives none): a compare is `{ compare }`, a look at
  the sum, `{ n digits }`, a look at the current number, `{ m digits larger|smaller|equal }`, then, if the
  counts agree, pairwise looks `{ a , b larger|smaller|equal }` until the digits differ; the word says how the
  second (the current number's digit) stands to the first. A subtraction column narrates `{ t , m ... }`,
  `{ borrow a 1 }`, `{ 9 - 1 = 8 }` (`{ 1 0 - 1 = 9 }` for a zero passed), `{ 1 3 - 9 = 4 }`. Other notes:
  `{ one more digit }`, `{ erase leading zeros }`, `{ bring down }`, `{ read the answer }`.
- The claim is read off the paper, not computed from the problem, so a wrong trace shows as a wrong claim.

The paper's own files agree with this on the first demonstration (W, character for character) but not always
later: there tags carry over between actions (a brought-down digit keeps its dividend tag, the n-th quotient digit
is 200 + n), `+` moves to x=69 once a sum reaches x=70, a 0 quotient digit still writes `-` and copies the number down,
and each erased zero is its own write. Here tags depend only on the action, which keeps them learnable.

`parse` reads the first complete claim (what the model claims before it wanders on to anything else) with its
digits separated by single spaces, at most 200 digits; otherwise None.
"""

from __future__ import annotations

import re

from longdiv.data.formats.base import register
from longdiv.data.problems import Problem
from longdiv.data.verify import Verdict, answer_verdict

VARIANTS = ("ln+", "l+", "w", "bare")
SEPARATOR = "ì" * 50
BRACKET = "ſ"
SCRATCH_X = 70
DIGITS = "0123456789"
# Every word a completion of any variant writes besides cells and numbers: actions, narration and the claim.
WORDS = ("write look clear { } final remainder is compare digits digit larger smaller equal , + - = _ carry the "
         "borrow a one more bring down erase leading zeros read answer " + BRACKET).split()
ANSWER_RE = re.compile(r"\{ final remainder is ((?:[0-9] ){1,200})\}")
WRITE_RE = re.compile(r"write ((?:\d+,\d+:\d+ \S(?: |$))+)")
CELL_RE = re.compile(r"(\d+),(\d+):\d+ (\S)")

Cell = tuple[int, int, str]


def cells_text(cells: list[Cell] | tuple[Cell, ...]) -> str:
    """`xx,yy:TAG C` for each cell, tagged by position in its word (see the module docstring)."""
    parts, tag, prev = [], 201, None
    for x, y, ch in cells:
        joins = prev is not None and prev[2] in DIGITS and prev[:2] == (x - 1, y) and (ch in DIGITS or ch == BRACKET)
        tag = tag + 1 if joins else 201
        parts.append(f"{x:02d},{y:02d}:{tag} {ch}")
        prev = (x, y, ch)
    return " ".join(parts)


def tagged_question(question: str) -> str:
    """The question one character at a time, each after its 1-based position in its word plus 200."""
    out, pos = [], 0
    for ch in question + " ":
        pos = 0 if ch == " " else pos + 1
        out.append("200 _" if ch == " " else f"{200 + pos} {ch}")
    return " ".join(out)


def spaced(value: int) -> str:
    return " ".join(str(value))


def relation(second: int, first: int) -> str:
    return "larger" if second > first else "smaller" if second < first else "equal"


class Paper:
    """The grid and the actions taken on it, in order."""

    def __init__(self):
        self.grid: dict[tuple[int, int], str] = {}
        self.actions: list[tuple[str, object]] = []

    def write(self, *cells: Cell):
        for x, y, ch in cells:
            self.grid[x, y] = ch
        self.actions.append(("write", cells))

    def look(self, *where: tuple[int, int]):
        self.actions.append(("look", tuple((x, y, self.grid[x, y]) for x, y in where)))

    def say(self, text: str):
        self.actions.append(("say", text))

    def clear(self, from_x: int):
        self.grid = {xy: ch for xy, ch in self.grid.items() if xy[0] < from_x}
        self.actions.append(("clear", ()))

    def ref(self, x: int, y: int) -> str:
        return cells_text([(x, y, self.grid[x, y])])

    def digit(self, x: int, y: int) -> int:
        return int(self.grid[x, y])

    def digits_on(self, y: int, xs: range) -> list[tuple[int, int]]:
        return [(x, y) for x in xs if self.grid.get((x, y), "_") in DIGITS]

    def render(self, keep: set[str]) -> str:
        words = []
        for kind, payload in self.actions:
            if kind not in keep:
                continue
            if kind == "say":
                words.append(f"{{ {payload} }}")
            elif kind == "clear":
                words.append("clear")
            else:
                words.append(f"{kind} {cells_text(payload)}")
        return " ".join(words)


def compare(paper: Paper, first: list[tuple[int, int]], second: list[tuple[int, int]]) -> bool:
    """Whether the number in cells `second` is at least the number in cells `first`."""
    paper.say("compare")
    paper.look(*first)
    paper.say(f"{len(first)} digits")
    paper.look(*second)
    rel = relation(len(second), len(first))
    paper.say(f"{len(second)} digits {rel}")
    for a, b in zip(first, second) if rel == "equal" else ():
        paper.look(a)
        paper.look(b)
        rel = relation(paper.digit(*b), paper.digit(*a))
        paper.say(f"{paper.digit(*a)} , {paper.digit(*b)} {rel}")
        if rel != "equal":
            break
    return rel != "smaller"


def add(paper: Paper, top: int, x0: int, units: int):
    """Writes on row top + 2 the sum of row `top` and the divisor on row top + 1, right to left."""
    carry = 0
    for x in range(units, x0 - 1, -1):
        terms = [(x, y) for y in (top, top + 1) if paper.grid.get((x, y), "+") in DIGITS + "_"]
        if not terms and not carry:
            break
        column = sum(paper.digit(*xy) for xy in terms if paper.grid[xy] != "_")
        if terms:
            paper.look(*terms)
        named = [paper.ref(*xy) for xy in terms] + ["0"] * (2 - len(terms))
        paper.say(f"{named[0]} + {named[1]} = {spaced(column)}")
        if carry:
            paper.say(f"{spaced(column)} + 1 = {spaced(column + 1)}")
            column += 1
        paper.write((x, top + 2, str(column % 10)))
        carry = column // 10
        if carry:
            paper.say("carry the 1")


def subtract(paper: Paper, row: int, a: int, b: int, multiple: str):
    """Subtracts `multiple` from the number on `row`, columns a..b; the difference goes on row + 2."""
    paper.write((a - 1, row + 1, "-"))
    left = b - len(multiple) + 1
    paper.write(*[(left + i, row + 1, ch) for i, ch in enumerate(multiple)])
    for x in range(b, a - 1, -1):
        top = paper.digit(x, row)
        paper.look((x, row))
        if x < left:
            paper.say(f"{top} - 0 = {top}")
            paper.write((x, row + 2, str(top)))
            continue
        paper.look((x, row + 1))
        low = paper.digit(x, row + 1)
        paper.say(f"{top} , {low} {relation(low, top)}")
        if low > top:
            paper.say("borrow a 1")
            lender = x - 1
            while paper.digit(lender, row) == 0:
                paper.look((lender, row))
                paper.say("1 0 - 1 = 9")
                paper.write((lender, row, "9"))
                lender -= 1
            value = paper.digit(lender, row)
            paper.look((lender, row))
            paper.say(f"{value} - 1 = {value - 1}")
            paper.write((lender, row, str(value - 1)))
            paper.say(f"1 {top} - {low} = {10 + top - low}")
            paper.write((x, row + 2, str(10 + top - low)))
        else:
            paper.say(f"{top} - {low} = {top - low}")
            paper.write((x, row + 2, str(top - low)))


def demonstrate(dividend: int, divisor: int) -> tuple[Paper, int]:
    """Does the long division on a fresh Paper; returns it and the remainder read off it."""
    paper = Paper()
    ds, ns = str(divisor), str(dividend)
    w, first = len(ds), len(ds) + 1
    last = first + len(ns) - 1
    x0 = max(SCRATCH_X, 10 * ((last + 11) // 10))  # at least one empty column between problem and scratch
    units = x0 + w
    paper.write(
        *[(i, 2, ch) for i, ch in enumerate(ds)], (w, 2, BRACKET), *[(first + i, 2, ch) for i, ch in enumerate(ns)]
    )
    divisor_cells = [(i, 2) for i in range(w)]
    take = min(w, len(ns))
    if not compare(paper, divisor_cells, [(first + i, 2) for i in range(take)]) and take < len(ns):
        paper.say("one more digit")
        take += 1
    row, a, b = 2, first, first + take - 1
    while True:
        current = [(x, row) for x in range(a, b + 1)]
        paper.write((b, 1, "0"))
        paper.clear(x0)
        paper.look(*divisor_cells)
        paper.write(
            *[(x, 0, "_") for x in range(x0 + 1, units)],
            (units, 0, "0"),
            (x0, 1, "+"),
            *[(x0 + 1 + i, 1, ch) for i, ch in enumerate(ds)],
        )
        quotient, top = 0, 0
        while True:
            add(paper, top, x0, units)
            if not compare(paper, paper.digits_on(top + 2, range(x0, units + 1)), current):
                break
            quotient += 1
            paper.look((b, 1))
            paper.say(f"{paper.ref(b, 1)} + 1 = {quotient}")
            paper.write(
                (b, 1, str(quotient)), (x0, top + 3, "+"), *[(x0 + 1 + i, top + 3, ch) for i, ch in enumerate(ds)]
            )
            top += 2
        if quotient:
            multiple = paper.digits_on(top, range(x0, units + 1))
            paper.look(*multiple)
            subtract(paper, row, a, b, "".join(paper.grid[xy] for xy in multiple))
            row += 2
            zeros = []
            for x in range(a, b):
                if paper.grid[x, row] != "0":
                    break
                zeros.append((x, row))
            if zeros:
                paper.look(*zeros)
                paper.say("erase leading zeros")
                paper.write(*[(x, y, "_") for x, y in zeros])
                a += len(zeros)
        if b == last:
            break
        b += 1
        paper.say("bring down")
        paper.look((b, 2))
        if a == b - 1 and paper.grid[a, row] == "0":
            paper.write((a, row, "_"), (b, row, paper.grid[b, 2]))
            a = b
        else:
            paper.write((b, row, paper.grid[b, 2]))
    answer = [(x, row) for x in range(a, b + 1)]
    paper.say("read the answer")
    paper.look(*answer)
    return paper, int("".join(paper.grid[xy] for xy in answer))


class RecchiaFormat:
    """The paper's demonstration format in one of its four published variants. Its checker gives the coarse verdict:
    right answer, wrong answer, or no answer.

    Args:
        variant: "ln+" (writes, looks and narration), "l+" (writes and looks), "w" (writes only) or "bare" (the
            tagged prompt, then the answer).
    """

    char_layout = False  # a cell is found by its written coordinates, not by a distance in characters
    alphabet = None  # words and numbers, tokenized as the tokenizer likes: see `lexicon`
    # Every word, at the start of a text and after a space, then cells that hold every number of up to three digits
    # in each of a cell's places: a tokenizer that splits text at word, number and symbol boundaries (as BPE and
    # SentencePiece ones do) cuts any completion into tokens of this text.
    lexicon = " ".join([*WORDS, *WORDS, *(f"{n:02d},{n:02d}:{n:03d} {n % 10} {n}" for n in range(1000))])
    strike = None

    def untrained(self, problem: Problem) -> list[tuple[int, int]]:
        return []

    def __init__(self, variant: str):
        if variant not in VARIANTS:
            raise ValueError(f"recchia variant {variant!r} is unknown; choose one of: {', '.join(VARIANTS)}")
        self.variant = variant
        self.name = f"recchia-{variant}"
        self.keep = {"ln+": {"write", "look", "say", "clear"}, "l+": {"write", "look", "clear"}}.get(
            variant, {"write", "clear"} if variant == "w" else set()
        )

    def render(self, problem: Problem) -> tuple[str, str]:
        paper, remainder = demonstrate(problem.dividend, problem.divisor)
        prompt = f"{SEPARATOR} {tagged_question(problem.question)} | "
        claim = f"{{ final remainder is {spaced(remainder)} }}"
        actions = paper.render(self.keep)
        return prompt, f"{actions} {claim}" if actions else claim

    def parse(self, text: str) -> int | None:
        if not isinstance(text, str):
            return None
        match = ANSWER_RE.search(text)
        return int(match[1].replace(" ", "")) if match else None

    def verify(self, problem: Problem, completion: str) -> Verdict:
        return answer_verdict(problem, self.parse(completion))

    def quotient(self, text: str) -> int | None:
        """The digits on the grid's row 1 from its first one on, left of the scratch area, after every write (`bare`
        writes none: None)."""
        if "write" not in self.keep:
            return None
        grid = {}
        for action in WRITE_RE.finditer(text):
            for x, y, char in CELL_RE.findall(action[1]):
                grid[int(x), int(y)] = char
        digits: list[tuple[int, str]] = []
        for x, char in sorted((x, char) for (x, y), char in grid.items() if y == 1):
            if not char.isdigit() or (digits and x != digits[-1][0] + 1):
                break
            digits.append((x, char))
        return int("".join(char for _, char in digits)) if digits else None


for _variant in VARIANTS:
    register(RecchiaFormat(_variant))
