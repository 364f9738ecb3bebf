"""Which demonstrations a run trains on when its file holds more than N."""

from collections import Counter

import pytest

from longdiv.data.choose import cells, choose, coverage, features
from longdiv.data.datamodule import DivisionData
from longdiv.data.problems import Problem, read_file

PAPER_TRAIN = "data/paper/train_numbers__div_remainder.txt"


def test_features_count_each_subtraction_cell_of_the_trace():
    # 93 mod 59: 9 - 59 (cells 9-9, 0-5, 0-0 with a borrow in), then 93 - 59 and 34 - 59 (its last cell 0-0 with a
    # borrow in again).
    found = features(Problem.from_numbers(93, 59))
    assert found[("divisor_digits", 2)] == found[("dividend_digits", 2)] == 1
    assert found[("cell", 9, 9, 0)] == 1 and found[("cell", 0, 5, 0)] == 1 and found[("cell", 0, 0, 1)] == 2
    assert found[("cell", 3, 9, 0)] == 1 and found[("cell", 9, 5, 1)] == 1  # 93 - 59: 3 - 9 borrows into 9 - 5
    assert sum(c for k, c in found.items() if k[0] == "cell") == 3 * 3


def _cells(problems):
    seen = Counter()
    for p in problems:
        seen.update({k: c for k, c in features(p).items() if k[0] == "cell"})
    return seen


def test_coverage_shows_more_cases_and_lengths_than_a_sample_of_the_same_size():
    pool = read_file(PAPER_TRAIN)
    chosen, sampled = coverage(pool, 50), choose(pool, 50, "sample", seed=0)
    assert len(set(chosen)) == 50 and set(chosen) <= set(pool)
    assert chosen == coverage(pool, 50)
    lengths = {len(str(p.divisor)) for p in pool}
    assert {len(str(p.divisor)) for p in chosen} == lengths  # every divisor length of the pool
    cells, sampled_cells = _cells(chosen), _cells(sampled)
    rare = lambda seen: sum(seen[k] < 4 for k in _cells(pool))
    assert rare(cells) == 0 < rare(sampled_cells)


def test_choices_and_the_datamodule_agree():
    pool = read_file(PAPER_TRAIN)
    assert choose(pool, 20, "first", 0) == pool[:20]
    assert choose(pool, 200, "coverage", 0) == pool
    with pytest.raises(ValueError, match="demo choice 'best' is unknown"):
        choose(pool, 20, "best", 0)
    data = DivisionData(num_demos=20, train_file=PAPER_TRAIN, demo_choice="coverage", tokenizer_name="tiny")
    assert data.train_problems() == coverage(pool, 20)
    with pytest.raises(ValueError, match="demo_choice 'best' is unknown"):
        DivisionData(demo_choice="best")


def test_cells_takes_the_problems_with_the_longest_subtraction_work_in_pool_order():
    pool = read_file(PAPER_TRAIN)
    chosen = choose(pool, 50, "cells", seed=0)
    assert len(set(chosen)) == 50 and chosen == [p for p in pool if p in set(chosen)]
    fewest_kept = min(map(cells, chosen))
    assert all(cells(p) <= fewest_kept for p in pool if p not in set(chosen))
    assert sum(map(cells, chosen)) > sum(map(cells, coverage(pool, 50))) > sum(
        map(cells, choose(pool, 50, "sample", 0)))
    assert cells(Problem.from_numbers(93, 59)) == 9  # three subtraction lines of three cells
