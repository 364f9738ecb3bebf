"""Small statistics shared by the CLI, the callbacks and the reports."""

from __future__ import annotations

import math


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # None right (all right) puts the lower (upper) end at 0 (1) exactly, which rounding can miss either way.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def accuracy(correct: int, n: int) -> dict:
    """`correct` of `n` as the records and reports write it: counts, the proportion and its Wilson interval."""
    low, high = wilson(correct, n)
    return {"correct": correct, "n_eval": n, "accuracy": correct / n if n else 0.0, "wilson_low": low,
            "wilson_high": high}
