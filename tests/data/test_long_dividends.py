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
