import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from longdiv.data.formats import format_names, get_format
from longdiv.data.formats.sub import LABELS, TAGS
from longdiv.data.problems import Problem
from longdiv.data.verify import Verdict

NAMES = format_names()
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_registry_holds_every_format():
    assert set(NAMES) == {"direct", "sub", "subrow", "subtag", "subcopy", "subadd", "subrand", "subdown",
                          "subfix", "recchia-ln+", "recchia-l+", "recchia-w", "recchia-bare"}
    assert all(get_format(name).name == name for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_format_declares_the_whole_protocol(name):
    fmt = get_format(name)
    problem = Problem.from_numbers(93, 59)
    assert isinstance(fmt.char_layout, bool)
    assert fmt.char_layout == name.startswith("sub")  # the sub family finds digits by distance in characters
    assert fmt.verify(problem, fmt.render(problem)[1]) == Verdict()
    assert fmt.verify(problem, "") == Verdict("malformed", 0 if fmt.char_layout else None)
    assert fmt.alphabet is None or fmt.lexicon is None  # one way to restrict the output layer at most
    assert fmt.strike == ("!" if name == "subfix" else None)  # only subfix's traces strike out their slips
    completion = fmt.render(problem)[1]
    assert all(0 <= start < end <= len(completion) for start, end in fmt.untrained(problem))
    assert (fmt.untrained(Problem.from_numbers(9876543, 12)) != []) == (name == "subfix")


def test_unknown_format_lists_the_valid_names():
    with pytest.raises(ValueError, match="'nope'") as err:
        get_format("nope")
    assert all(name in str(err.value) for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(dividend=st.integers(0, 10**10), divisor=st.integers(1, 10**9))
@example(dividend=5, divisor=59)
@example(dividend=12345, divisor=1)
@example(dividend=1000007, divisor=7)
@example(dividend=70000007, divisor=7)
@example(dividend=0, divisor=1)
@example(dividend=0, divisor=999999999)
@example(dividend=4539951598, divisor=346810911)
@example(dividend=10**10, divisor=10**9)
def test_parse_reads_back_the_rendered_remainder(name, dividend, divisor):
    fmt = get_format(name)
    problem = Problem.from_numbers(dividend, divisor)
    prompt, completion = fmt.render(problem)
    assert fmt.parse(completion) == problem.remainder
    # The prompt claims nothing, so the model cannot copy the answer; the first claim is the completion's.
    assert fmt.parse(prompt) is None
    assert fmt.parse(prompt + completion) == problem.remainder
    assert fmt.render(problem) == (prompt, completion)


CLAIMISH = st.text(alphabet="=0123456789 \n{}finalremainders\u0663\u00b2-.")


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=100, deadline=None)
@given(text=st.one_of(st.text(), CLAIMISH))
def test_parse_never_raises_on_arbitrary_text(name, text):
    assert isinstance(get_format(name).parse(text), int | None)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "text",
    ["", "\n", "=", "= ", "{ final remainder is }", "1" * 10_000, "=" + "1" * 10_000, "= " + "7" * 10_000 + "\n"],
    ids=["empty", "newline", "bare-equals", "equals-space", "empty-claim", "10k-digits", "equals-10k", "direct-10k"],
)
def test_parse_survives_degenerate_text(name, text):
    assert get_format(name).parse(text) is None  # none of them claims a remainder


def _claim(name: str, digits: str) -> str:
    if name == "direct":
        return f"= {digits}\n"
    if name == "sub":
        return f"={digits[::-1]}\n"
    if name in ("subrow", "subtag", "subadd", "subrand", "subdown", "subfix"):
        return "R" + "".join(f"0{d}{'a' if name == 'subtag' else '.'}" for d in digits[::-1]) + "\n"
    if name == "subcopy":
        return "R" + "".join(f"00{d}." for d in digits[::-1]) + "\n"
    return f"{{ final remainder is {' '.join(digits)} }}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [1, 2, 200, 201, 10_000])
def test_parse_reads_whole_claims_of_at_most_200_digits(name, length):
    digits = "4" + "0" * (length - 2) + "7" if length > 1 else "4"
    expected = int(digits) if length <= 200 else None
    assert get_format(name).parse(_claim(name, digits)) == expected
    assert get_format(name).parse("noise\n" + _claim(name, digits) + "more noise") == expected


@pytest.mark.parametrize("name", NAMES)
def test_parse_takes_the_first_of_several_claims(name):
    fmt = get_format(name)
    first, second = Problem.from_numbers(93, 59), Problem.from_numbers(25736, 144)
    text = fmt.render(first)[1] + fmt.render(second)[1] + fmt.render(Problem.from_numbers(10, 3))[1]
    assert fmt.parse(text) == 34


@pytest.mark.parametrize("name", NAMES)
def test_render_depends_on_the_question_text_only_in_the_prompt(name):
    fmt = get_format(name)
    calculate = Problem(93, 59, "Calculate the remainder when 93 is divided by 59.")
    what = Problem.from_numbers(93, 59)
    assert fmt.render(calculate)[1] == fmt.render(what)[1]
    assert fmt.render(calculate)[0] != fmt.render(what)[0]


@pytest.mark.parametrize("name", ["sub", "direct"])
def test_the_answer_is_in_the_completion_not_the_prompt(name):
    fmt = get_format(name)
    problem = Problem.from_numbers(93, 59)
    prompt, completion = fmt.render(problem)
    assert prompt.startswith(problem.question)
    assert "34" not in prompt and "43" not in prompt  # direct writes 34, sub writes it least significant first
    assert ("= 34" if name == "direct" else "=430") in completion


def test_sub_matches_its_docstring_example():
    prompt, completion = get_format("sub").render(Problem.from_numbers(93, 59))
    assert prompt.splitlines() == ["What is the remainder when 93 is divided by 59?", "p9q3", "=90.50.00."]
    assert completion.splitlines() == [
        "p99.50.00.",
        "-90.55-09-",
        "q93.59.00.",
        "-94-53.00.",
        "-95-57-09-",
        "=430",
    ]
    assert prompt.endswith("\n") and completion.endswith("\n")


def test_subrow_ends_on_a_copy_of_the_kept_line():
    sub_prompt, sub_completion = get_format("sub").render(Problem.from_numbers(93, 59))
    prompt, completion = get_format("subrow").render(Problem.from_numbers(93, 59))
    assert prompt == sub_prompt
    assert completion.splitlines() == [*sub_completion.splitlines()[:-1], "R94-53.00."]


@settings(max_examples=60, deadline=None)
@given(dividend=st.integers(0, 10**10), divisor=st.integers(1, 10**9))
def test_subrow_answer_is_the_line_two_above_with_a_new_head(dividend, divisor):
    lines = get_format("subrow").render(Problem.from_numbers(dividend, divisor))[1].splitlines()
    assert lines[-1] == "R" + lines[-3][1:]
    assert lines[-2][0] == "-" and lines[-2][-1] == "-"  # the subtraction that went negative
    assert lines[-3][-1] == "."  # the kept value is not negative


@pytest.mark.parametrize(("name", "start", "lines"), [
    ("subtag", "=90a50b00c", ["p99a50b00c", "-90a55B09C", "q93a59b00c", "-94A53b00c", "-95A57B09C", "R94A53b00c"]),
    ("subcopy", "=090.050.000.",
     ["p099.050.000.", "-990.055-009-", "q993.059.000.", "-394-953.000.", "-495-357-009-", "R394-953.000."]),
    ("subadd", "=90.50.00.", ["p99.50.00.", "-90.55-09-", "+99.50+00+", "q93.59.00.", "-94-53.00.", "-95-57-09-",
                              "R94+53+00+"]),
])
def test_sub_variants_match_their_docstring_example(name, start, lines):
    prompt, completion = get_format(name).render(Problem.from_numbers(93, 59))
    assert prompt.splitlines()[1:] == ["p9q3", start]
    assert completion.splitlines() == lines
    assert get_format(name).parse(completion) == 34


def _cells(line: str) -> list[str]:
    return [line[i : i + 3] for i in range(1, len(line), 3)]


def _grid(name: str, problem: Problem) -> list[str]:
    """The start line (last of the prompt) and the completion's lines."""
    prompt, completion = get_format(name).render(problem)
    return prompt.splitlines()[2:] + completion.splitlines()


@settings(max_examples=60, deadline=None)
@given(dividend=st.integers(0, 10**10), divisor=st.integers(1, 10**9))
def test_subtag_is_subrow_with_cells_named_by_letter(dividend, divisor):
    problem = Problem.from_numbers(dividend, divisor)
    tagged, plain = _grid("subtag", problem), _grid("subrow", problem)
    assert len(tagged) == len(plain)
    for t, p in zip(tagged, plain):
        assert len(t) == len(p) and t[0] == p[0]
        for i, (tc, pc) in enumerate(zip(_cells(t), _cells(p))):
            assert tc[:2] == pc[:2] and tc[2].lower() == TAGS[i]
            assert tc[2].isupper() == (pc[2] == "-")  # upper case: a borrow into the next cell
    with pytest.raises(ValueError, match="more than 14 digits"):
        get_format("subtag").render(Problem.from_numbers(10**20, 10**15))


def value(line: str) -> int:
    """The running value of a `subcopy` line: each cell's second last digit, least significant first."""
    return int("".join(cell[-2] for cell in re.findall("....", line[1:]))[::-1])


@settings(max_examples=60, deadline=None)
@given(dividend=st.integers(0, 10**10), divisor=st.integers(1, 10**9))
def test_subcopy_is_subrow_with_each_cell_led_by_the_digit_it_works_on(dividend, divisor):
    problem = Problem.from_numbers(dividend, divisor)
    copied, plain = _grid("subcopy", problem), _grid("subrow", problem)
    assert len(copied) == len(plain)
    kept = 0
    for k, (c, p) in enumerate(zip(copied, plain)):
        cells = re.findall("....", c[1:])
        assert len(c) == 1 + 4 * len(cells) and c[0] + "".join(cell[1:] for cell in cells) == p
        first = int("".join(cell[0] for cell in cells)[::-1])  # the copied digits, as a number
        if c[0] == "-":  # a subtraction works on the value of the line above
            assert first == value(copied[k - 1])
        elif c[0] in "=R":
            assert first == (0 if c[0] == "=" else int(copied[-3][1::4][::-1]))
        else:  # a bring-down shifts the kept value: the line above, or the one above that after a subtraction
            assert first == kept and value(c) == 10 * kept + int(str(dividend)[LABELS.index(c[0])])
        if c[0] != "-" or c[-1] == ".":  # lines that are not negative: the value a bring-down will shift
            kept = value(c)


def _value(line: str) -> int:
    """The running value of a 3-character-cell line: each cell's second digit, least significant first."""
    return int(line[2::3][::-1])


@settings(max_examples=60, deadline=None)
@given(dividend=st.integers(0, 10**10), divisor=st.integers(1, 10**9))
@example(dividend=93, divisor=59)
def test_subadd_is_subrow_with_the_divisor_added_back_after_each_negative_line(dividend, divisor):
    problem = Problem.from_numbers(dividend, divisor)
    added, plain = _grid("subadd", problem), _grid("subrow", problem)
    width = len(str(divisor)) + 1
    # Take the add-back lines out and subrow is left, but for the answer: subrow's copy of the kept line.
    assert [line for line in added if line[0] != "+"][:-1] == plain[:-1]
    assert _value(added[-1]) == _value(plain[-1]) == problem.remainder and added[-1][0] == "R"
    backs = [k for k, line in enumerate(added) if line[0] in "+R"]
    assert len(backs) == len(str(dividend))  # one for each digit brought down
    for k in backs:
        above = added[k - 1]
        assert above[0] == "-" and above[-1] == "-"  # the subtraction that went negative
        assert _value(added[k]) == (_value(above) + divisor) % 10**width == _value(added[k - 2])
        carries = [int(_value(above) % 10**(i + 1) + divisor % 10**(i + 1) >= 10**(i + 1)) for i in range(width)]
        assert added[k][3::3] == "".join("+" if c else "." for c in carries)
        if k + 1 < len(added):  # the next digit is brought down from the line just above
            nxt = added[k + 1]
            assert _value(nxt) == 10 * _value(added[k]) + int(str(dividend)[LABELS.index(nxt[0])])


def test_direct_matches_its_docstring_example():
    assert get_format("direct").render(Problem.from_numbers(93, 59)) == (
        "What is the remainder when 93 is divided by 59?\n",
        "= 34\n",
    )


@pytest.mark.parametrize("name", ["sub", "subrow", "subrand", "subdown"])
def test_dividends_longer_than_the_labels_cycle_them(name):
    problem = Problem.from_numbers(int("9876543210" * 6), 4567)  # 60 digits, past the 26 labels
    fmt = get_format(name)
    prompt, completion = fmt.render(problem)
    tags = prompt.splitlines()[1][::2]
    assert len(tags) == 60 and tags[26:52] == tags[:26] and len(set(tags[:26])) == 26
    heads = [line[0] for line in completion.splitlines() if line[0] not in "-R="]
    assert "".join(heads) == tags  # one bring-down per digit, in order, under its label
    assert fmt.parse(completion) == problem.remainder and fmt.verify(problem, completion).kind is None


def test_subdown_counts_the_labels_down_to_a_at_the_last_digit():
    fmt = get_format("subdown")
    for digits in (1, 8, 12, 20):
        problem = Problem.from_numbers(int("7" * digits), 13)
        tags = fmt.render(problem)[0].splitlines()[1][::2]
        assert tags == "abcdefghijklmnopqrstuvwxyz"[:digits][::-1]


@settings(max_examples=60, deadline=None)
@given(dividend=st.integers(0, 10**12), divisor=st.integers(1, 10**6), name=st.sampled_from(["subrand", "subdown"]))
def test_relabelled_formats_are_subrow_with_other_labels(dividend, divisor, name):
    problem = Problem.from_numbers(dividend, divisor)
    rand, plain = get_format(name), get_format("subrow")
    (prompt, completion), (plain_prompt, plain_completion) = rand.render(problem), plain.render(problem)
    assert (prompt, completion) == rand.render(problem)  # drawn from the problem: the same every time
    tags = prompt.splitlines()[1][::2]
    assert len(set(tags)) == len(tags) and set(tags) <= set(LABELS)  # distinct letters, up to 26 digits
    relabel = dict(zip(tags, plain_prompt.splitlines()[1][::2]))
    lines, plain_lines = completion.splitlines(), plain_completion.splitlines()
    assert [relabel.get(line[0], line[0]) + line[1:] for line in lines] == plain_lines
    assert rand.parse(completion) == problem.remainder and rand.verify(problem, completion).kind is None


def test_the_sub_docstring_shows_each_variants_trace_as_rendered():
    """Each indented block of sub.py's docstring is a trace of 93 mod 59: `sub`'s with its prompt, then each
    variant's start line and completion, in the order the docstring names them; notes follow two spaces."""
    from longdiv.data.formats import sub

    blocks = re.findall(r"(?:\n    \S.*)+", sub.__doc__)
    shown = [[re.split(r"\s{2,}", line.strip())[0] for line in block.strip("\n").split("\n")] for block in blocks]
    problem = Problem.from_numbers(93, 59)
    prompt, completion = get_format("sub").render(problem)
    expected = [(prompt + completion).splitlines()]
    for name in ("subrow", "subtag", "subcopy", "subadd", "subrand", "subdown", "subfix"):
        prompt, completion = get_format(name).render(problem)
        shown_prompt = prompt.splitlines()[1 if name in ("subrand", "subdown") else -1:]  # with their labels
        expected.append([*shown_prompt, *completion.splitlines()])
    assert shown == expected


@settings(max_examples=60, deadline=None)
@given(dividend=st.integers(0, 10**12), divisor=st.integers(1, 10**6))
def test_subfix_is_subrow_with_slips_struck_out_and_left_unlearned(dividend, divisor):
    problem = Problem.from_numbers(dividend, divisor)
    fix, plain = get_format("subfix"), get_format("subrow")
    (prompt, completion), (plain_prompt, plain_completion) = fix.render(problem), plain.render(problem)
    assert prompt == plain_prompt and fix.render(problem) == (prompt, completion)
    lines = completion.splitlines()
    struck = [i - 1 for i, line in enumerate(lines) if line == "!"]
    assert [line for i, line in enumerate(lines) if line != "!" and i not in struck] == plain_completion.splitlines()
    # Each wrong line is the line written after its `!` with one value digit off by one.
    for i in struck:
        wrong, right = lines[i], lines[i + 2]
        diff = [k for k in range(len(right)) if wrong[k] != right[k]]
        assert len(wrong) == len(right) and len(diff) == 1 and diff[0] % 3 == 2
        assert (int(wrong[diff[0]]) - int(right[diff[0]])) % 10 in (1, 9)
    # The untrained spans are exactly the wrong lines.
    assert [completion[start:end] for start, end in fix.untrained(problem)] == [lines[i] for i in struck]
    assert fix.parse(completion) == problem.remainder and fix.verify(problem, completion) == Verdict()
    assert fix.verify(problem, plain_completion) == Verdict()  # a trace with no slips is right too


def test_subfix_strikes_about_a_fifth_of_the_step_lines_and_checks_what_is_left():
    fix = get_format("subfix")
    problems = [Problem.from_numbers(7423189 + 7919 * k, 457 + 13 * k) for k in range(50)]
    steps = slips = 0
    for problem in problems:
        lines = fix.render(problem)[1].splitlines()
        slips += lines.count("!")
        steps += sum(line[0] not in "!R" for line in lines) - lines.count("!")
    assert 0.15 < slips / steps < 0.25
    problem = problems[0]
    right = get_format("subrow").render(problem)[1].splitlines()
    slipped = right[:3] + [right[3][:2] + str((int(right[3][2]) + 1) % 10) + right[3][3:]] + right[4:]
    assert fix.verify(problem, "\n".join(slipped)).kind == "subtraction"  # a slip left standing is an error
    assert fix.verify(problem, "\n".join(right[:4] + ["!"] + right[3:])) == Verdict()  # one struck needlessly


@pytest.mark.parametrize("name", format_names())
def test_the_quotient_read_from_a_right_trace_is_the_true_one_or_the_format_writes_none(name):
    fmt = get_format(name)
    problems = [Problem.from_numbers(9371, 59), Problem.from_numbers(5, 7), Problem.from_numbers(10_000_003, 1),
                Problem.from_numbers(90_817_263_544, 3_019)]
    if name in ("direct", "recchia-bare"):
        assert [fmt.quotient(fmt.render(p)[1]) for p in problems] == [None] * len(problems)
        return
    assert [fmt.quotient(fmt.render(p)[1]) for p in problems] == [p.dividend // p.divisor for p in problems]


def test_a_sub_trace_with_a_subtraction_too_many_claims_another_quotient_or_none():
    subrow = get_format("subrow")
    lines = subrow.render(Problem.from_numbers(9371, 59))[1].splitlines()  # 158 rem 49
    at = next(i for i, line in enumerate(lines) if line.startswith("-"))
    assert subrow.quotient("\n".join(lines[:at] + [lines[at]] + lines[at:])) != 158
    assert subrow.quotient("R94-53.00.\n") is None  # no bring-down: no quotient claimed
