"""Which demonstrations to train on when a pool holds more than N: a seeded sample (the default), the pool's first
N, N chosen for coverage, or the N with the most subtraction cells.

`coverage` picks greedily, one problem at a time, the one that adds most of what the chosen set still lacks: every
divisor length and every dividend length of the pool, each about N/8 times, and every subtraction cell of long
division by repeated subtraction, (running digit, divisor digit, borrow in), 200 cases, each a few times. Ties go to
the earlier problem in the pool, so the choice is deterministic. Why: with 50 of the paper's problems taken at
random, a model slips mostly on subtraction cells and on long divisors, of which a random 50 holds few.

`cells` takes the N problems whose traces hold the most subtraction cells (ties to the earlier one): the most
practice of the step where small-N models slip, at the price of short problems. Of the paper's 200, the 50 with
most cells hold 5,517 cells, `coverage`'s 50 hold 3,521 and a seeded sample of 50 2,781.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

from longdiv.data.formats.sub import digits_lsf, trace
from longdiv.data.problems import Problem

CHOICES = ("sample", "first", "coverage", "cells")
CELL_CAP = 4  # times each subtraction cell case is worth seeing


def features(problem: Problem) -> Counter:
    """What a demonstration of `problem` shows: its lengths, and each subtraction cell case with how often."""
    found = Counter([("divisor_digits", len(str(problem.divisor))), ("dividend_digits", len(str(problem.dividend)))])
    width = len(str(problem.divisor)) + 1
    lines = trace(problem)
    for above, (head, _, _) in pairwise(lines):
        if head != "-":
            continue
        borrow = 0
        for a, b in zip(digits_lsf(above[1], width), digits_lsf(problem.divisor, width)):
            found[("cell", a, b, borrow)] += 1
            borrow = int(a - b - borrow < 0)
    return found


def coverage(pool: list[Problem], n: int) -> list[Problem]:
    """`n` problems of `pool` chosen greedily for coverage (see the module docstring), in the order chosen."""
    shown = [features(p) for p in pool]
    lengths = {key for f in shown for key in f if key[0] != "cell"}
    caps = {key: max(1, n // 8) for key in lengths}
    have: Counter = Counter()
    left, chosen = list(range(len(pool))), []
    for _ in range(min(n, len(pool))):
        def gain(i: int) -> int:
            return sum(min(have[k] + c, caps.get(k, CELL_CAP)) - min(have[k], caps.get(k, CELL_CAP))
                       for k, c in shown[i].items())
        best = max(left, key=lambda i: (gain(i), -i))
        left.remove(best)
        chosen.append(best)
        have.update(shown[best])
    return [pool[i] for i in chosen]


def cells(problem: Problem) -> int:
    """Subtraction cells in the trace of `problem`."""
    return sum(count for key, count in features(problem).items() if key[0] == "cell")


def most_cells(pool: list[Problem], n: int) -> list[Problem]:
    """The `n` problems of `pool` with the most subtraction cells, in pool order."""
    ranked = sorted(range(len(pool)), key=lambda i: (-cells(pool[i]), i))[:n]
    return [pool[i] for i in sorted(ranked)]


def choose(pool: list[Problem], n: int, how: str, seed: int) -> list[Problem]:
    """`n` demonstrations of `pool`: `sample` (seeded by `seed`), `first`, `coverage` or `cells`; the whole pool
    when `n` is its size, in its own order."""
    if how not in CHOICES:
        raise ValueError(f"demo choice {how!r} is unknown; choose one of {', '.join(CHOICES)}")
    if n >= len(pool):
        return pool
    if how == "first":
        return pool[:n]
    if how == "coverage":
        return coverage(pool, n)
    if how == "cells":
        return most_cells(pool, n)
    return random.Random(seed).sample(pool, n)
