"""The Wilson interval against an independent computation: the two proportions at which the score test of the
observed count is exactly at the z threshold, found by bisection rather than by the closed form."""

import math

import pytest

from longdiv.stats import accuracy, error_bars, wilson, wilson_bars


def score_bound(correct: int, n: int, upper: bool, z: float = 1.96) -> float:
    """The p on one side of correct/n where (correct/n - p)^2 = z^2 p (1 - p) / n, by bisection."""
    observed = correct / n

    def outside(p: float) -> bool:  # p is rejected by the score test
        return (observed - p) ** 2 > z * z * p * (1 - p) / n

    inner, outer = observed, (1.0 if upper else 0.0)
    if not outside(outer):  # the interval reaches the end of [0, 1]
        return outer
    for _ in range(200):
        middle = (inner + outer) / 2
        inner, outer = (inner, middle) if outside(middle) else (middle, outer)
    return (inner + outer) / 2


@pytest.mark.parametrize(("correct", "n"), [(0, 10), (10, 10), (5, 10), (1, 1), (0, 1), (429, 500), (843, 1000),
                                            (2, 100), (448, 500), (1, 3)])
def test_wilson_ends_are_where_the_score_test_turns(correct, n):
    low, high = wilson(correct, n)
    assert low == pytest.approx(score_bound(correct, n, upper=False), abs=1e-12)
    assert high == pytest.approx(score_bound(correct, n, upper=True), abs=1e-12)


def test_wilson_figures_quoted_in_the_docs():
    assert [round(x, 3) for x in wilson(429, 500)] == [0.825, 0.886]  # README: 85.8% [82.5%, 88.6%]
    assert [round(x, 3) for x in wilson(0, 10)] == [0.0, 0.278]


def test_all_wrong_and_all_right_stay_inside_zero_and_one():
    for n in range(1, 201):
        assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0
        assert 0.0 < wilson(0, n)[1] < 1.0 and 0.0 < wilson(n, n)[0] < 1.0
        low, high = wilson(n // 3, n)
        assert 0.0 <= low < n // 3 / n + 1e-12 and n // 3 / n < high <= 1.0
    assert wilson(0, 0) == (0.0, 1.0) and accuracy(0, 0)["accuracy"] == 0.0
    assert math.isclose(accuracy(3, 4)["accuracy"], 0.75)


def test_error_bars_are_the_distances_to_each_end_and_never_negative():
    rows = [accuracy(3, 10), accuracy(0, 7), accuracy(5, 5)]
    below, above = wilson_bars(rows)
    for r, lo, hi in zip(rows, below, above):
        assert lo == pytest.approx(r["accuracy"] - r["wilson_low"])
        assert hi == pytest.approx(r["wilson_high"] - r["accuracy"])
    assert below[1] == 0.0 and above[2] == 0.0 and min(below + above) >= 0.0
    # an interval that misses its value by a rounding error gives a bar of 0, not a negative length matplotlib refuses
    assert error_bars([0.5, 1.0], [(0.5 + 1e-12, 0.7), (0.9, 1.0 - 1e-12)]) == [[0.0, pytest.approx(0.1)],
                                                                              [pytest.approx(0.2), 0.0]]
