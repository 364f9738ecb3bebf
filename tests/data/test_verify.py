import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from longdiv.data.formats import format_names, get_format
from longdiv.data.formats.sub import LABELS
from longdiv.data.problems import Problem
from longdiv.data.verify import KINDS, Verdict

PROBLEMS = st.builds(Problem.from_numbers, st.integers(0, 10**10), st.integers(1, 10**9))
PROPERTY = settings(max_examples=60, deadline=None)


SUBS = pytest.mark.parametrize("name", ["sub", "subrow", "subtag", "subcopy", "subadd"])  # with a step verifier


def sub_lines(name: str, problem: Problem) -> list[str]:
    return get_format(name).render(problem)[1].splitlines()


def check(name: str, problem: Problem, lines: list[str]) -> Verdict:
    return get_format(name).verify(problem, "\n".join(lines) + "\n")


def pick(data, indices: list[int], label: str) -> int:
    assume(indices)
    return data.draw(st.sampled_from(indices), label=label)


def other_digit(data, digit: str) -> str:
    return data.draw(st.sampled_from([d for d in "0123456789" if d != digit]), label="new digit")


@SUBS
@PROPERTY
@given(problem=PROBLEMS)
@example(problem=Problem.from_numbers(93, 59))
@example(problem=Problem.from_numbers(0, 1))
@example(problem=Problem.from_numbers(70000007, 7))
def test_sub_correct_trace_is_ok(name, problem):
    completion = get_format(name).render(problem)[1]
    assert get_format(name).parse(completion) == problem.remainder
    assert get_format(name).verify(problem, completion) == Verdict()
    assert get_format(name).verify(problem, completion).ok
    assert get_format(name).verify(problem, completion.rstrip("\n")).ok


def wrong_subtraction_digit(name: str, lines: list[str], data) -> int:
    """Changes one value digit of a subtraction line; returns the line's index."""
    k = pick(data, [i for i, line in enumerate(lines) if line[0] == "-"], "line")
    size = get_format(name).cell
    cell = data.draw(st.integers(0, (len(lines[k]) - 1) // size - 1), label="cell")
    pos = size - 1 + size * cell  # the running value's digit of that cell
    lines[k] = lines[k][:pos] + other_digit(data, lines[k][pos]) + lines[k][pos + 1 :]
    return k


def wrong_answer(name: str, problem: Problem, lines: list[str], data) -> int:
    """Makes the answer line claim another remainder; returns it."""
    width = len(str(problem.divisor)) + 1
    wrong = data.draw(st.integers(0, 10**width - 1).filter(lambda r: r != problem.remainder), label="claim")
    digits = str(wrong).zfill(width)[::-1]
    if name == "sub":
        lines[-1] = "=" + digits
    else:  # the answer row's value digits, the rest of its cells as they were
        cells = re.findall("." * get_format(name).cell, lines[-1][1:])
        lines[-1] = "R" + "".join(cell[:-2] + d + cell[-1] for cell, d in zip(cells, digits))
    return wrong


@SUBS
@pytest.mark.parametrize("answer_too", [False, True])
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_sub_wrong_subtraction_digit(name, answer_too, problem, data):
    """The verifier reports the first wrong step, also when the final answer it led to is wrong too."""
    lines = sub_lines(name, problem)
    k = wrong_subtraction_digit(name, lines, data)
    if answer_too:
        wrong = wrong_answer(name, problem, lines, data)
        assert get_format(name).parse("\n".join(lines)) == wrong
    assert check(name, problem, lines) == Verdict("subtraction", k)


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_sub_wrong_brought_down_digit(name, problem, data):
    lines = sub_lines(name, problem)
    k = pick(data, [i for i, line in enumerate(lines) if line[0] in LABELS], "line")
    pos = get_format(name).cell - 1  # units digit = the digit brought down
    lines[k] = lines[k][:pos] + other_digit(data, lines[k][pos]) + lines[k][pos + 1 :]
    assert check(name, problem, lines) == Verdict("bring_down", k)


@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_subcopy_wrong_copied_digit(problem, data):
    """A digit copied wrongly at a cell's start is a wrong step of its line's kind, even when the rest is right."""
    lines = sub_lines("subcopy", problem)
    k = pick(data, list(range(len(lines) - 1)), "line")  # any step line
    pos = 1 + 4 * data.draw(st.integers(0, (len(lines[k]) - 1) // 4 - 1), label="cell")
    lines[k] = lines[k][:pos] + other_digit(data, lines[k][pos]) + lines[k][pos + 1 :]
    assert check("subcopy", problem, lines) == Verdict("subtraction" if lines[k][0] == "-" else "bring_down", k)


def _nonnegative(line: str) -> bool:
    # The last separator is the sign of the result: '.' in `sub` and `subrow`, a lower-case letter in `subtag`.
    return line[0] == "-" and (line[-1] == "." or line[-1].islower())


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
@example(problem=Problem.from_numbers(93, 59), data=None)
def test_sub_missing_nonnegative_subtraction(name, problem, data):
    """The next subtraction moves up into the gap: its value is one divisor too small for that line."""
    lines = sub_lines(name, problem)
    candidates = [i for i, line in enumerate(lines) if _nonnegative(line)]
    k = candidates[0] if data is None else pick(data, candidates, "line")
    del lines[k]
    assert check(name, problem, lines) == Verdict("subtraction", k)


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
@example(problem=Problem.from_numbers(93, 59), data=None)
@example(problem=Problem.from_numbers(5, 7), data=None)
def test_sub_stopping_before_the_result_goes_negative(name, problem, data):
    """Dropping a step's last (negative) subtraction puts the next label, or the answer, where a '-' belongs."""
    lines = sub_lines(name, problem)
    candidates = [i for i, line in enumerate(lines) if line[0] == "-" and not _nonnegative(line)]
    k = candidates[-1] if data is None else pick(data, candidates, "line")
    del lines[k]
    assert check(name, problem, lines) == Verdict("quotient_digit", k)


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
@example(problem=Problem.from_numbers(93, 59), data=None)
def test_sub_subtracting_after_the_result_went_negative(name, problem, data):
    lines = sub_lines(name, problem)
    candidates = [i for i, line in enumerate(lines) if line[0] == "-" and not _nonnegative(line)]
    k = candidates[-1] if data is None else pick(data, candidates, "line")
    lines.insert(k + 1, lines[k])
    assert check(name, problem, lines) == Verdict("quotient_digit", k + 1)


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_sub_wrong_final_answer(name, problem, data):
    lines = sub_lines(name, problem)
    wrong = wrong_answer(name, problem, lines, data)
    assert get_format(name).parse("\n".join(lines)) == wrong
    assert check(name, problem, lines) == Verdict("final_answer", len(lines) - 1)


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_sub_truncated_trace(name, problem, data):
    lines = sub_lines(name, problem)
    keep = data.draw(st.integers(0, len(lines) - 1), label="lines kept")
    assert check(name, problem, lines[:keep]) == Verdict("malformed", keep)
    assert get_format(name).verify(problem, "\n".join(lines[:keep])) == Verdict("malformed", keep)


GARBAGE = {
    "empty": lambda line: "",
    "words": lambda line: "the remainder is 34",
    "cut-short": lambda line: line[:-1],
    "extra-cell": lambda line: line + "00.",
    "bad-head": lambda line: "=" + line[1:],
    "letter-in-cell": lambda line: line[:2] + "x" + line[3:],
    "uppercase-head": lambda line: "P" + line[1:],
    "plus-head": lambda line: "+" + line[1:],
}


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data(), how=st.sampled_from(sorted(GARBAGE)))
def test_sub_garbage_line(name, problem, data, how):
    lines = sub_lines(name, problem)
    k = data.draw(st.integers(0, len(lines) - 2), label="line")  # any step line; the answer line has its own kind
    assume(not (name == "subadd" and how == "plus-head"))  # a head of `subadd`'s own: test_subadd_* below
    lines[k] = GARBAGE[how](lines[k])
    assert check(name, problem, lines) == Verdict("malformed", k)


def _add_backs(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line[0] == "+"]


@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_subadd_wrong_add_back_digit_is_a_subtraction_error(problem, data):
    lines = sub_lines("subadd", problem)
    k = pick(data, _add_backs(lines), "line")
    pos = 2 + 3 * data.draw(st.integers(0, (len(lines[k]) - 1) // 3 - 1), label="cell")  # a value digit
    lines[k] = lines[k][:pos] + other_digit(data, lines[k][pos]) + lines[k][pos + 1 :]
    assert check("subadd", problem, lines) == Verdict("subtraction", k)


@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_subadd_skipping_or_ending_at_an_add_back(problem, data):
    """Bringing down without adding back, or answering with digits left, is a bring-down error at that line; a '+'
    where the answer's 'R' belongs is a wrong answer."""
    lines = sub_lines("subadd", problem)
    k = pick(data, _add_backs(lines), "line")
    assert check("subadd", problem, lines[:k] + lines[k + 1 :]) == Verdict("bring_down", k)
    assert check("subadd", problem, [*lines[:k], "R" + lines[k][1:], *lines[k + 1 :]]) == Verdict("bring_down", k)
    last = len(lines) - 1
    assert check("subadd", problem, [*lines[:last], "+" + lines[last][1:]]) == Verdict("final_answer", last)


@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_subadd_add_back_in_place_of_a_subtraction_stops_too_early(problem, data):
    lines = sub_lines("subadd", problem)
    k = pick(data, [i for i, line in enumerate(lines) if line[0] == "-"], "line")
    lines[k] = "+" + lines[k][1:]
    assert check("subadd", problem, lines) == Verdict("quotient_digit", k)


@pytest.mark.parametrize("name", ["direct", "recchia-w"])
@settings(max_examples=30, deadline=None)
@given(problem=PROBLEMS)
@example(problem=Problem.from_numbers(93, 59))
@example(problem=Problem.from_numbers(0, 1))
def test_coarse_verdicts(name, problem):
    fmt = get_format(name)
    completion = fmt.render(problem)[1]
    right = str(problem.remainder)
    wrong = str(problem.remainder + 1)
    if name == "direct":
        claim, wrong_claim = f"= {right}", f"= {wrong}"
    else:
        claim, wrong_claim = (f"{{ final remainder is {' '.join(r)} }}" for r in (right, wrong))
    assert claim in completion
    assert get_format(name).verify(problem, completion) == Verdict()
    assert get_format(name).verify(problem, completion.replace(claim, wrong_claim)) == Verdict("final_answer", None)
    assert get_format(name).verify(problem, completion.replace(claim, "")) == Verdict("malformed", None)
    assert get_format(name).verify(problem, "") == Verdict("malformed", None)


def _valid(verdict: Verdict, text: str) -> bool:
    if verdict.ok:
        return verdict.step is None
    return verdict.kind in KINDS and (verdict.step is None or 0 <= verdict.step <= len(text.splitlines()))


@pytest.mark.parametrize("name", format_names())
@settings(max_examples=100, deadline=None)
@given(problem=PROBLEMS, text=st.text())
def test_verify_never_raises_on_arbitrary_text(name, problem, text):
    fmt = get_format(name)
    verdict = fmt.verify(problem, text)
    assert _valid(verdict, text)
    assume(fmt.parse(text) != problem.remainder)
    assert not verdict.ok  # a text that does not even claim the right remainder is never a right trace


@SUBS
@PROPERTY
@given(problem=PROBLEMS, data=st.data())
def test_verify_never_raises_on_a_mangled_sub_trace(name, problem, data):
    completion = get_format(name).render(problem)[1]
    start = data.draw(st.integers(0, len(completion)), label="start")
    end = data.draw(st.integers(start, len(completion)), label="end")
    mangled = (
        completion[:start] + data.draw(st.text(alphabet="-=.0123456789pqx\n\r"), label="insert") + completion[end:]
    )
    verdict = get_format(name).verify(problem, mangled)
    assert _valid(verdict, mangled)
    assert verdict.ok == (mangled.splitlines()[: len(completion.splitlines())] == completion.splitlines())
