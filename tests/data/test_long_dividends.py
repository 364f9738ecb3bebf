"""Test problems with dividends longer than any in training, for length generalization."""

import pytest

from longdiv.data.datamodule import DivisionData
from longdiv.data.problems import generate, with_dividend_digits


def test_longer_dividends_keep_the_divisors():
    base = generate("interpolate", 6, 3)
    long = with_dividend_digits(base, [12, 13], seed=3)
    assert [len(str(p.dividend)) for p in long] == [12, 13] * 3
    assert [p.divisor for p in long] == [p.divisor for p in base]
    assert long == with_dividend_digits(base, [12, 13], seed=3)
    with pytest.raises(ValueError, match="dividend digits"):
        with_dividend_digits(base, [0], seed=3)


def test_datamodule_tests_on_longer_dividends_only():
    data = DivisionData(format="direct", num_demos=16, num_val=2, num_test=6, test_dividend_digits=[12, 13],
                        tokenizer_name="tiny")
    data.setup()
    longest_train = max(len(str(e.problem.dividend)) for e in data.train_examples)
    test = [e.problem for e in data.eval_examples["test"]]
    assert len(test) == 6 and min(len(str(p.dividend)) for p in test) > longest_train
    assert all(len(str(p.dividend)) <= 8 for p in (e.problem for e in data.eval_examples["val"]))


def test_long_demos_lengthen_the_last_of_the_draw_and_keep_their_divisors():
    plain = DivisionData(num_demos=20, train_file="data/paper/train_numbers__div_remainder.txt", tokenizer_name="tiny")
    primed = DivisionData(num_demos=20, train_file="data/paper/train_numbers__div_remainder.txt", long_demos=4,
                          long_digits=[12, 20], tokenizer_name="tiny")
    before, after = plain.train_problems(), primed.train_problems()
    assert after[:16] == before[:16] and len(after) == 20
    assert [len(str(p.dividend)) for p in after[16:]] == [12, 20, 12, 20]
    assert [p.divisor for p in after[16:]] == [p.divisor for p in before[16:]]
    assert all(p.question == f"What is the remainder when {p.dividend} is divided by {p.divisor}?" for p in after[16:])
    assert after == primed.train_problems()  # seeded
    default = DivisionData(num_demos=20, long_demos=8, tokenizer_name="tiny").train_problems()
    assert sorted(len(str(p.dividend)) for p in default[12:]) == list(range(9, 17))
    with pytest.raises(ValueError, match=r"long_demos is 21; it must be between 0 and num_demos \(20\)"):
        DivisionData(num_demos=20, long_demos=21)
