import pytest

from longdiv.data.formats import get_format
from longdiv.data.problems import Problem
from longdiv.data.scoring import score

PROBLEM = Problem.from_numbers(93, 59)  # remainder 34
DIRECT = get_format("direct")
KEYS = {"index", "question", "dividend", "divisor", "expected", "generated", "parsed", "correct", "error_kind",
        "error_step"}


def test_a_right_greedy_trace_gives_the_whole_record():
    assert score(DIRECT, PROBLEM, 7, ["= 34\n"]) == {
        "index": 7, "question": PROBLEM.question, "dividend": 93, "divisor": 59, "expected": 34, "generated": "= 34\n",
        "parsed": 34, "correct": True, "error_kind": None, "error_step": None,
    }


def test_a_wrong_answer_is_a_wrong_final_answer():
    record = score(DIRECT, PROBLEM, 0, ["= 35\n"])
    assert record.keys() == KEYS
    assert (record["parsed"], record["correct"], record["error_kind"], record["error_step"]) == (
        35, False, "final_answer", None)


def test_no_answer_is_counted_wrong_and_malformed():
    record = score(DIRECT, PROBLEM, 0, ["the remainder is 34"])
    assert (record["parsed"], record["correct"], record["error_kind"]) == (None, False, "malformed")
    assert record["generated"] == "the remainder is 34"


def test_the_step_verdict_comes_from_the_format():
    sub = get_format("sub")
    lines = sub.render(PROBLEM)[1].splitlines()
    lines[3] = "-94-54.00."  # 93 - 59 written as 44
    record = score(sub, PROBLEM, 0, ["\n".join(lines) + "\n"])
    assert (record["parsed"], record["correct"], record["error_kind"], record["error_step"]) == (
        34, True, "subtraction", 3)


def test_votes_take_the_most_given_answer_and_keep_its_first_trace():
    samples = ["= 35\n", "= 34\n", " = 34\n", "junk"]
    record = score(DIRECT, PROBLEM, 0, samples)
    assert record.keys() == KEYS | {"votes"}
    assert record["votes"] == [35, 34, 34, None]
    assert (record["parsed"], record["correct"], record["generated"]) == (34, True, "= 34\n")


@pytest.mark.parametrize(("samples", "parsed", "generated"), [
    (["= 35\n", "= 34\n"], 35, "= 35\n"),
    (["= 34\n", "= 35\n"], 34, "= 34\n"),
    (["junk", "= 35\n", "= 34\n", "= 34\n", "= 35\n"], 35, "= 35\n"),
])
def test_a_tie_goes_to_the_earlier_sample(samples, parsed, generated):
    record = score(DIRECT, PROBLEM, 0, samples)
    assert (record["parsed"], record["generated"]) == (parsed, generated)


def test_votes_that_claim_nothing_keep_the_first_trace():
    record = score(DIRECT, PROBLEM, 0, ["junk", "more junk"])
    assert (record["parsed"], record["generated"], record["votes"], record["error_kind"]) == (
        None, "junk", [None, None], "malformed")


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="no generated samples"):
        score(DIRECT, PROBLEM, 3, [])
