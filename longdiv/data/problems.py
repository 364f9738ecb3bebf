"""Division problems and where they come from.

A `Problem` is the one currency of the project. Sources yield Problems and nothing else: the DeepMind generator
(`mathematics-dataset`), files in the DeepMind release layout (question line, answer line) and `question|answer`
files such as the paper's.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train-easy", "train-medium", "train-hard", "train", "interpolate")

# Both templates that `mathematics_dataset.modules.numbers.div_remainder` emits. Numbers are unsigned integers;
# anything else is a malformed question.
QUESTION_RE = re.compile(
    r"^(?:Calculate the remainder when (?P<a>\d+) is divided by (?P<b>\d+)\."
    r"|What is the remainder when (?P<c>\d+) is divided by (?P<d>\d+)\?)$"
)
MAX_DIGITS = 100


@dataclass(frozen=True)
class Problem:
    """One division problem; the remainder is always derived, never stored.

    Args:
        dividend: The number divided, >= 0.
        divisor: The number divided by, >= 1.
        question: The natural-language question the model sees.
    """

    dividend: int
    divisor: int
    question: str

    def __post_init__(self):
        if self.divisor < 1 or self.dividend < 0:
            raise ValueError(f"Problem({self.dividend}, {self.divisor}): need dividend >= 0 and divisor >= 1")

    @property
    def remainder(self) -> int:
        return self.dividend % self.divisor

    @property
    def key(self) -> tuple[int, int]:
        return (self.dividend, self.divisor)

    @classmethod
    def from_numbers(cls, dividend: int, divisor: int) -> Problem:
        return cls(dividend, divisor, f"What is the remainder when {dividend} is divided by {divisor}?")


def parse_question(question: str, where: str = "question") -> Problem:
    """Reads a question of either generator template into a Problem.

    Args:
        question: e.g. "Calculate the remainder when 93 is divided by 59."
        where: Names the input in error messages, e.g. "train.txt line 4".
    """
    match = QUESTION_RE.match(question.strip())
    if match is None:
        raise ValueError(
            f"{where}: {question[:120]!r} is not a div_remainder question; expected "
            "'Calculate the remainder when A is divided by B.' or 'What is the remainder when A is divided by B?'"
        )
    a, b = (match["a"], match["b"]) if match["a"] is not None else (match["c"], match["d"])
    if len(a) > MAX_DIGITS or len(b) > MAX_DIGITS:
        raise ValueError(f"{where}: numbers above 10^{MAX_DIGITS} are not supported; shorten the question")
    if int(b) == 0:
        raise ValueError(f"{where}: divisor is 0; the remainder is undefined, remove or fix this problem")
    return Problem(int(a), int(b), question.strip())


def _checked(problem: Problem, answer: str, where: str) -> Problem:
    answer = answer.strip()
    if not (answer.isascii() and answer.isdigit()):  # str.isdigit alone accepts '²', which int() refuses
        raise ValueError(f"{where}: answer {answer[:40]!r} is not a non-negative integer; write the remainder")
    if len(answer) > MAX_DIGITS:
        raise ValueError(f"{where}: answer has more than {MAX_DIGITS} digits; write the remainder without padding")
    if int(answer) != problem.remainder:
        raise ValueError(
            f"{where}: answer {answer} is wrong, {problem.dividend} % {problem.divisor} = {problem.remainder}; "
            "fix the answer or drop the line"
        )
    return problem


def _read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; pass an existing problems file")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise ValueError(f"{path}: binary data (NUL bytes); pass a UTF-8 text file of problems")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is harmless
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); re-save it as UTF-8") from None
    lines = text.splitlines()  # handles CRLF
    if not any(line.strip() for line in lines):
        raise ValueError(f"{path}: empty file; it needs at least one problem")
    return lines


def read_pipe_file(path: str | Path) -> list[Problem]:
    """Reads `question|answer` lines (the paper's layout). Blank lines are skipped."""
    problems = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        fields = line.split("|")
        if len(fields) != 2:
            raise ValueError(f"{where}: expected one '|' between question and answer, found {len(fields) - 1}")
        problems.append(_checked(parse_question(fields[0], where), fields[1], where))
    return problems


def read_deepmind_file(path: str | Path) -> list[Problem]:
    """Reads the DeepMind release layout: a question line, then its answer line."""
    lines = [(number, line) for number, line in enumerate(_read_lines(path), start=1) if line.strip()]
    if len(lines) % 2:
        raise ValueError(f"{path}: odd number of non-blank lines; every question line needs an answer line after it")
    return [
        _checked(parse_question(question, f"{path} line {q}"), answer, f"{path} line {a}")
        for (q, question), (a, answer) in zip(lines[::2], lines[1::2])
    ]


def read_file(path: str | Path) -> list[Problem]:
    """Reads a problems file, choosing the layout by whether its first line holds a '|'."""
    first = next(line for line in _read_lines(path) if line.strip())
    return read_pipe_file(path) if "|" in first else read_deepmind_file(path)


def read_questions(path: str | Path) -> list[Problem]:
    """Reads questions whose answers are optional, for `predict` and `ask --file`: a question per line, each
    optionally followed by `|answer` or by its answer on the next line (so any problems file reads too). An answer
    that is given is checked; the truth comes from the question either way."""
    problems, answered = [], True
    for number, line in enumerate(_read_lines(path), start=1):
        where = f"{path} line {number}"
        if not line.strip():
            continue
        if not answered and line.strip().isdigit():  # the DeepMind layout: the answer of the question above
            _checked(problems[-1], line, where)
            answered = True
            continue
        question, *answer = line.split("|")
        if len(answer) > 1:
            raise ValueError(f"{where}: expected at most one '|' between question and answer, found {len(answer)}")
        problem = parse_question(question, where)
        problems.append(_checked(problem, answer[0], where) if answer else problem)
        answered = bool(answer)
    return problems


class _IntGcdSympy:
    """sympy as mathematics_dataset's number sampler sees it, with a gcd of two Python ints that skips sympy.

    `sample.number.integer` tests every integer it draws with `sympy.gcd(value, coprime_to) == 1`. For two ints,
    sympy builds polynomials first, which was most of the time that drawing problems took; `math.gcd` gives the
    same answers, so the same problems are drawn. Anything that is not two ints goes to sympy.
    """

    def __init__(self, sympy):
        self._sympy = sympy

    def __getattr__(self, name):
        return getattr(self._sympy, name)

    def gcd(self, a, b):
        if type(a) is int and type(b) is int:
            return math.gcd(a, b)
        return self._sympy.gcd(a, b)


def _import_generator():
    """Imports mathematics_dataset's div_remainder module with two sympy shims.

    mathematics-dataset 1.0.1 imports `base_solution_linear` from `sympy.solvers.diophantine`, which sympy >= 1.6
    moved to `sympy.solvers.diophantine.diophantine`. Re-export it from the old place before the import. Then give
    its number sampler an integer gcd (`_IntGcdSympy`).
    """
    import importlib

    # `import sympy.solvers.diophantine as m` would bind the function of that name, which shadows the package.
    dio = importlib.import_module("sympy.solvers.diophantine")
    if not hasattr(dio, "base_solution_linear"):
        from sympy.solvers.diophantine.diophantine import base_solution_linear

        dio.base_solution_linear = base_solution_linear
    from mathematics_dataset.modules import numbers
    from mathematics_dataset.sample import number

    if not isinstance(number.sympy, _IntGcdSympy):
        number.sympy = _IntGcdSympy(number.sympy)
    return numbers


def generate(split: str, count: int, seed: int) -> list[Problem]:
    """Draws `count` problems from the DeepMind generator's `numbers__div_remainder` module.

    Args:
        split: One of "train-easy", "train-medium", "train-hard", "train" (all three difficulty levels) or
            "interpolate" (the test distribution).
        count: How many problems.
        seed: Seeds the generator; the same (split, count, seed) gives the same problems.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
    import numpy as np

    numbers = _import_generator()
    if split == "interpolate":
        module = numbers.test()["div_remainder"]
    else:
        level, levels = {"train": (0, 1), "train-easy": (0, 3), "train-medium": (1, 3), "train-hard": (2, 3)}[split]
        lo, hi = level / levels, (level + 1) / levels

        def entropy_fn(r):  # generate.py's _make_entropy_fn: the level's slice of the entropy range
            return (r[0] + lo * (r[1] - r[0]), r[0] + hi * (r[1] - r[0]))

        module = numbers.train(entropy_fn)["div_remainder"]
    # The generator draws from the global `random` and `numpy.random`; seed them and restore them afterwards so
    # that drawing problems never disturbs the caller's random streams.
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        return [parse_question(str(module().question), f"generator {split}") for _ in range(count)]
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def with_dividend_digits(problems: list[Problem], digits: list[int], seed: int) -> list[Problem]:
    """The same divisors with new dividends of the given digit counts, for testing length generalization.

    Each problem keeps its divisor and gets a uniformly drawn dividend with a digit count taken in turn from
    `digits`, so the divisors stay in the distribution a model was trained on while the dividends grow past it.

    Args:
        problems: Problems whose divisors to keep, e.g. a draw from the interpolate split.
        digits: Dividend digit counts, each in 1..MAX_DIGITS, e.g. [10, 11, 12].
        seed: Seeds the dividends.
    """
    if not digits or not all(1 <= d <= MAX_DIGITS for d in digits):
        raise ValueError(f"dividend digits {digits} must be a non-empty list of counts in 1..{MAX_DIGITS}")
    rng = random.Random(seed)
    return [
        Problem.from_numbers(rng.randrange(10 ** (d - 1) if d > 1 else 0, 10**d), p.divisor)
        for p, d in zip(problems, (digits[i % len(digits)] for i in range(len(problems))))
    ]
