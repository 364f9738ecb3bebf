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


def error_bars(values: list[float], bounds: list[tuple[float, float]]) -> list[list[float]]:
    """Matplotlib's asymmetric error-bar lengths (below, above) of each value from its interval (low, high); clipped
    at 0, since at a rate of 0 or 1 an interval's end can miss the value by a rounding error either way."""
    return [[max(0.0, v - low) for v, (low, _) in zip(values, bounds)],
            [max(0.0, high - v) for v, (_, high) in zip(values, bounds)]]


def wilson_bars(rows: list[dict]) -> list[list[float]]:
    """`error_bars` of each record's accuracy and its Wilson interval, as `accuracy` writes them."""
    return error_bars([r["accuracy"] for r in rows], [(r["wilson_low"], r["wilson_high"]) for r in rows])
