import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longdiv.data.formats import get_format
from longdiv.data.formats.recchia import VARIANTS, RecchiaFormat, cells_text
from longdiv.data.problems import Problem

NAMES = [f"recchia-{v}" for v in VARIANTS]

# PAPER-FORMAT.md, "The W variant of the first training problem, in full", typed in.
W_EXAMPLE = (
    "ìììììììììììììììììììììììììììììììììììììììììììììììììì 201 C 202 a 203 l 204 c 205 u 206 l 207 a 208 t 209 e 200 _ "
    "201 t 202 h 203 e 200 _ 201 r 202 e 203 m 204 a 205 i 206 n 207 d 208 e 209 r 200 _ 201 w 202 h 203 e 204 n "
    "200 _ 201 9 202 3 200 _ 201 i 202 s 200 _ 201 d 202 i 203 v 204 i 205 d 206 e 207 d 200 _ 201 b 202 y 200 _ "
    "201 5 202 9 203 . 200 _ | write 00,02:201 5 01,02:202 9 02,02:203 ſ 03,02:201 9 04,02:202 3 write 04,01:201 0 "
    "clear write 71,00:201 _ 72,00:201 0 70,01:201 + 71,01:201 5 72,01:202 9 write 72,02:201 9 write 71,02:201 5 "
    "write 04,01:201 1 70,03:201 + 71,03:201 5 72,03:202 9 write 72,04:201 8 write 71,04:201 1 write 70,04:201 1 "
    "write 02,03:201 - write 03,03:201 5 04,03:202 9 write 03,02:201 8 write 04,04:201 4 write 03,04:201 3 "
    "{ final remainder is 3 4 }"
)
FIRST = Problem(93, 59, "Calculate the remainder when 93 is divided by 59.")


def test_w_reproduces_the_papers_first_demonstration():
    prompt, completion = get_format("recchia-w").render(FIRST)
    assert prompt + completion == W_EXAMPLE
    assert prompt.endswith(" | ") and completion.startswith("write ")


def test_bare_is_the_prefix_then_the_answer():
    prompt, completion = get_format("recchia-bare").render(FIRST)
    assert prompt == W_EXAMPLE[: W_EXAMPLE.index(" | ") + 3]
    assert completion == "{ final remainder is 3 4 }"
    assert len(prompt + completion) == 379  # the note's table


@pytest.mark.parametrize("problem", [FIRST, Problem.from_numbers(25736, 144), Problem.from_numbers(7000007, 7)])
def test_variants_nest(problem):
    """L+ is LN+ without narration, W is L+ without looks, and each is longer than the next."""
    ln, lp, w, bare = (get_format(name).render(problem)[1] for name in NAMES)
    assert len(ln) > len(lp) > len(w) > len(bare)
    assert re.sub(r"\{ [^{}]* \} ", "", ln) == lp
    assert re.sub(r"look (?:\d+,\d+:\d+ \S )+", "", lp) == w


@pytest.mark.parametrize(
    "dividend,divisor",
    [
        (0, 1),
        (5, 59),
        (59, 59),
        (7000007, 7),
        (1000007, 7),
        (1000, 999),
        (10**10, 1),
        (10**10, 10**9),
        (9999999999, 99999),
        (100, 101),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_edge_cases_claim_the_remainder(name, dividend, divisor):
    fmt = get_format(name)
    problem = Problem.from_numbers(dividend, divisor)
    assert fmt.parse(fmt.render(problem)[1]) == problem.remainder


def test_zero_difference_and_zero_quotient_digit_keep_no_leading_zero():
    # 7000007 / 7: 7 - 7 = 0, then zeros are brought down one by one with quotient digits 0.
    completion = get_format("recchia-w").render(Problem.from_numbers(7000007, 7))[1]
    assert "write 02,04:201 0 write 02,04:201 _ 03,04:201 0 write 03,01:201 0" in completion
    assert completion.endswith("{ final remainder is 0 }")


def test_big_problems_widen_coordinates_consistently():
    # 60 + 60 digits do not fit left of x=70, so the scratch area moves right of the problem and past x=99.
    problem = Problem.from_numbers(int("9" * 60), int("7" * 60))
    fmt = get_format("recchia-w")
    completion = fmt.render(problem)[1]
    assert " 130,01:201 +" in completion
    assert fmt.parse(completion) == problem.remainder


def test_tags_count_within_a_word_of_one_action():
    assert (
        cells_text([(0, 2, "5"), (1, 2, "9"), (2, 2, "ſ"), (3, 2, "9")])
        == "00,02:201 5 01,02:202 9 02,02:203 ſ 03,02:201 9"
    )
    assert cells_text([(72, 2, "9"), (72, 3, "9")]) == "72,02:201 9 72,03:201 9"  # different rows, different words


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match="ln\\+, l\\+, w, bare"):
        RecchiaFormat("n+")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("{ final remainder is 3 4 }", 34),
        ("x { final remainder is 0 } ììì { final remainder is 7 }", 0),  # the first claim counts
        ("{ final remainder is 34 }", None),
        ("{ final remainder is }", None),
        ("{ final remainder is 3 4", None),
        ("{ final remainder is ٣ ٤ }", None),  # Arabic-Indic digits are not the format's digits
        ("{ final remainder is " + "9 " * 201 + "}", None),
        ("{ final remainder is " + "9 " * 200 + "}", int("9" * 200)),
        ("", None),
    ],
)
def test_parse(text, expected):
    assert get_format("recchia-ln+").parse(text) == expected


problems = st.builds(Problem.from_numbers, st.integers(0, 10**10), st.integers(1, 10**9))
small = st.builds(Problem.from_numbers, st.integers(0, 10**4), st.integers(1, 10**5))


@settings(max_examples=200, deadline=None)
@given(st.one_of(problems, small), st.sampled_from(NAMES))
def test_claims_the_remainder(problem, name):
    fmt = get_format(name)
    prompt, completion = fmt.render(problem)
    assert prompt.endswith(" | ") and fmt.parse(prompt) is None
    assert fmt.parse(completion) == problem.remainder


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_parse_never_raises(text):
    answer = get_format("recchia-w").parse(text)
    assert answer is None or isinstance(answer, int)


@settings(max_examples=50)
@given(st.lists(st.sampled_from(["{ final remainder is ", "3 ", "4", " ", "}", "ì", "\n", "{", "-1 "]), max_size=20))
def test_parse_never_raises_on_near_claims(pieces):
    answer = get_format("recchia-w").parse("".join(pieces))
    assert answer is None or answer >= 0


NOTE_SUM = re.compile(r"^(.+) \+ (.+) = ([\d ]+)$")
NOTE_DIFFERENCE = re.compile(r"^([\d ]+) - ([\d ]+) = ([\d ]+)$")
NOTE_COMPARE = re.compile(r"^(\d) , (\d) (larger|smaller|equal)$")
CELL_REF = re.compile(r"^\d+,\d+:\d+ (\S)$")


def value(term: str) -> int:
    """A number in a note: a cell (a digit, or a blank worth 0) or digits separated by spaces."""
    cell = CELL_REF.match(term)
    if cell:
        return 0 if cell[1] == "_" else int(cell[1])
    return int(term.replace(" ", ""))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10**12), st.integers(1, 10**7))
def test_every_ln_plus_note_is_true_arithmetic(dividend, divisor):
    """Each narrated sum, difference (borrows included) and comparison of LN+ holds, so a renderer that narrates
    wrong arithmetic fails here even where it writes the right digits."""
    _, completion = get_format("recchia-ln+").render(Problem.from_numbers(dividend, divisor))
    notes = re.findall(r"\{ ([^{}]*) \}", completion)
    checked = 0
    for note in notes:
        if match := NOTE_SUM.match(note):
            assert value(match[1]) + value(match[2]) == value(match[3]), note
        elif match := NOTE_DIFFERENCE.match(note):
            assert value(match[1]) - value(match[2]) == value(match[3]) >= 0, note
        elif match := NOTE_COMPARE.match(note):
            first, second = int(match[1]), int(match[2])
            assert match[3] == ("larger" if second > first else "smaller" if second < first else "equal"), note
        else:
            continue
        checked += 1
    assert checked or dividend < divisor  # a division with any step narrates arithmetic


def test_ln_plus_narrates_borrows_across_zeros_with_their_arithmetic():
    _, completion = get_format("recchia-ln+").render(Problem.from_numbers(1000, 999))  # 1000 - 999 borrows twice
    assert "{ borrow a 1 }" in completion and "{ 1 0 - 1 = 9 }" in completion
