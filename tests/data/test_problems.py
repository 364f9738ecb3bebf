import random
from pathlib import Path

import numpy as np
import pytest

from longdiv.data import problems
from longdiv.data.problems import SPLITS, Problem, generate, parse_question, read_file

PAPER = Path(__file__).parents[2] / "data" / "paper"
TEMPLATES = ("Calculate the remainder when ", "What is the remainder when ")


def _draw_recording_answers(split: str, count: int, seed: int) -> tuple[list[Problem], list[int]]:
    """Runs the real generator through `generate`, also keeping the answers it computed itself."""
    numbers = problems._import_generator()
    answers = []

    def recording(modules):
        module = modules["div_remainder"]

        def draw():
            problem = module()
            answers.append(int(problem.answer))
            return problem

        return {"div_remainder": draw}

    class Numbers:
        @staticmethod
        def test():
            return recording(numbers.test())

        @staticmethod
        def train(entropy_fn):
            return recording(numbers.train(entropy_fn))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(problems, "_import_generator", lambda: Numbers)
        drawn = generate(split, count, seed)
    return drawn, answers


@pytest.fixture(scope="module")
def interpolate():
    return _draw_recording_answers("interpolate", 10_000, 7)


@pytest.mark.parametrize("split,count", [("interpolate", 10_000), ("train", 1_000)])
def test_generated_questions_parse_and_agree_with_the_generator(interpolate, split, count):
    drawn, answers = interpolate if split == "interpolate" else _draw_recording_answers(split, count, 7)
    assert len(drawn) == len(answers) == count
    assert all(isinstance(p, Problem) for p in drawn)
    assert [p.remainder for p in drawn] == answers
    assert all(0 <= p.remainder < p.divisor for p in drawn)
    assert all(parse_question(p.question) == p for p in drawn)
    for template in TEMPLATES:
        assert any(p.question.startswith(template) for p in drawn), template
    assert all(p.question.startswith(TEMPLATES) for p in drawn)


def test_interpolate_is_harder_than_train_easy(interpolate):
    easy = generate("train-easy", 300, 7)
    assert np.mean([p.dividend.bit_length() for p in easy]) < np.mean([p.dividend.bit_length() for p in interpolate[0]])


def test_generate_is_deterministic_per_seed():
    first = generate("train", 50, 3)
    assert generate("train", 50, 3) == first
    assert generate("train", 50, 4) != first
    assert generate("train-hard", 50, 3) != first
    assert generate("train", 20, 3) == first[:20]


def test_the_integer_gcd_shim_draws_the_problems_sympy_draws(monkeypatch):
    import sympy
    from mathematics_dataset.sample import number

    problems._import_generator()
    assert isinstance(number.sympy, problems._IntGcdSympy)
    shim = number.sympy
    for a, b in [(12, 18), (7, 1), (0, 5), (-4, 6), (sympy.Integer(12), 18), (12, sympy.Integer(-18))]:
        assert shim.gcd(a, b) == sympy.gcd(a, b)
    assert shim.Integer is sympy.Integer
    fast = [generate("interpolate", 300, 11), generate("train", 300, 11)]
    monkeypatch.setattr(problems._IntGcdSympy, "gcd", lambda self, a, b: sympy.gcd(a, b))
    assert [generate("interpolate", 300, 11), generate("train", 300, 11)] == fast


def test_generate_leaves_global_random_state_alone():
    random.seed(123)
    np.random.seed(456)
    py_state, np_state = random.getstate(), np.random.get_state()
    generate("interpolate", 20, 0)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and after[2:] == np_state[2:]
    np.testing.assert_array_equal(after[1], np_state[1])


def test_generate_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="'validation'") as err:
        generate("validation", 10, 0)
    assert all(split in str(err.value) for split in SPLITS)


def test_reads_the_papers_files():
    train = read_file(PAPER / "train_numbers__div_remainder.txt")
    validation = read_file(PAPER / "validation_numbers__div_remainder.txt")
    assert (len(train), len(validation)) == (200, 100)
    assert train[0] == Problem(93, 59, "Calculate the remainder when 93 is divided by 59.")
    assert validation[0].key == (92, 46) and validation[0].remainder == 0
    assert not {p.key for p in train} & {p.key for p in validation}


def test_reads_the_deepmind_layout(tmp_path):
    path = tmp_path / "div_remainder.txt"
    path.write_text(
        "Calculate the remainder when 93 is divided by 59.\n34\n"
        "What is the remainder when 2817419 is divided by 7?\n3\n"
    )
    assert read_file(path) == [
        Problem(93, 59, "Calculate the remainder when 93 is divided by 59."),
        Problem(2817419, 7, "What is the remainder when 2817419 is divided by 7?"),
    ]


Q1 = "What is the remainder when 93 is divided by 59?"
Q2 = "Calculate the remainder when 25736 is divided by 144."
GOOD = [(93, 59), (25736, 144)]
BIG = 10**100 + 1


# Each file is either read as GOOD (or the given keys) or rejected with a ValueError whose message names the file
# (always) and holds every needle: the line, what is wrong and how to fix it.
HOSTILE = [
    pytest.param(b"", ("empty file", "at least one problem"), id="empty"),
    pytest.param(b"\n  \n\t\n", ("empty file", "at least one problem"), id="only-blank-lines"),
    pytest.param(b"\x00\x01PK\x03\x04" * 10, ("binary", "UTF-8 text file"), id="binary"),
    pytest.param(f"{Q1}|34\n".encode("latin-1") + b"caf\xe9|1\n", ("not UTF-8", "re-save"), id="not-utf8"),
    pytest.param(f"{Q1}|34\r\n{Q2}|104\r\n".encode(), GOOD, id="crlf"),
    pytest.param(f"\ufeff{Q1}|34\n{Q2}|104\n".encode(), GOOD, id="byte-order-mark"),
    pytest.param(f"\ufeff{Q1}\r\n34\r\n{Q2}\r\n104\r\n".encode(), GOOD, id="deepmind-bom-crlf"),
    pytest.param(f"{Q1}|34\n{Q2}|104|x\n".encode(), ("line 2", "one '|'", "found 2"), id="extra-fields"),
    pytest.param(f"{Q1}|34\n{Q2}\n".encode(), ("line 2", "one '|'", "found 0"), id="missing-pipe"),
    pytest.param(
        f"{Q1}|34\nWhat is the remainder when -5 is divided by 3?|1\n".encode(),
        ("line 2", "not a div_remainder question", "expected 'Calculate the remainder when A"),
        id="negative-dividend",
    ),
    pytest.param(
        f"What is the remainder when 5 is divided by -3?|2\n{Q1}|34\n".encode(),
        ("line 1", "not a div_remainder question"),
        id="negative-divisor",
    ),
    pytest.param(
        f"{Q1}|34\nWhat is the remainder when {BIG} is divided by 7?|{BIG % 7}\n".encode(),
        ("line 2", "10^100", "shorten"),
        id="above-1e100",
    ),
    pytest.param(
        f"What is the remainder when {'9' * 5000} is divided by {'7' * 5000}?|0\n".encode(),
        ("line 1", "10^100", "shorten"),
        id="5000-digit-numbers",
    ),
    pytest.param(
        f"What is the remainder when {10**100 - 1} is divided by 7?|{(10**100 - 1) % 7}\n".encode(),
        [(10**100 - 1, 7)],
        id="100-digits-is-fine",
    ),
    pytest.param(
        f"{Q1}|34\nWhat is the remainder when 5 is divided by 0?|0\n".encode(),
        ("line 2", "divisor is 0", "remove or fix"),
        id="divisor-0",
    ),
    pytest.param(
        f"{Q1}|34\nWhat is 5 divided by 3?|2\n".encode(),
        ("line 2", "not a div_remainder question", "expected 'Calculate the remainder when A"),
        id="other-template",
    ),
    pytest.param(
        f"{Q1}|34\n{Q2}|105\n".encode(), ("line 2", "wrong", "25736 % 144 = 104", "fix the answer"), id="wrong"
    ),
    pytest.param(f"{Q1}|thirty-four\n".encode(), ("line 1", "not a non-negative integer"), id="word-answer"),
    pytest.param(f"{Q1}|\n".encode(), ("line 1", "not a non-negative integer"), id="empty-answer"),
    pytest.param(f"{Q1}|34.0\n".encode(), ("line 1", "not a non-negative integer"), id="decimal-answer"),
    pytest.param(f"{Q1}|-25\n".encode(), ("line 1", "not a non-negative integer"), id="negative-answer"),
    pytest.param(f"{Q1}|3\u2074\n".encode(), ("line 1", "not a non-negative integer"), id="superscript-answer"),
    pytest.param(f"{Q1}|{'0' * 5000}34\n".encode(), ("line 1", "answer"), id="5000-digit-answer"),
    pytest.param(f"{Q1}\n34\n{Q2}\n".encode(), ("odd number", "needs an answer line"), id="deepmind-missing-answer"),
    pytest.param(
        f"{Q1}\n34\n\n\n{Q2}\n105\n".encode(), ("line 6", "wrong", "fix the answer"), id="deepmind-blank-then-wrong"
    ),
    pytest.param(
        f"{Q1}\n\n34\n\n{Q2}\nabc\n".encode(), ("line 6", "not a non-negative integer"), id="deepmind-word-answer"
    ),
    pytest.param(f"\n{Q1}|34\n\n\n{Q2}|104\n\n".encode(), GOOD, id="blank-lines"),
    pytest.param(f"{Q1}\n34\n\n\n{Q2}\n104\n\n".encode(), GOOD, id="deepmind-blank-lines"),
    pytest.param(f"  {Q1} | 34 \n\t{Q2}|104\t\n".encode(), GOOD, id="padding-spaces"),
    pytest.param(None, ("no such file", "existing"), id="missing-file"),
]


@pytest.mark.parametrize("content,expected", HOSTILE)
def test_hostile_files(tmp_path, content, expected):
    path = tmp_path / "problems.txt"
    if content is not None:
        path.write_bytes(content)
    if isinstance(expected, list):
        assert [p.key for p in read_file(path)] == expected
        return
    with pytest.raises(ValueError) as err:
        read_file(path)
    message = str(err.value)
    assert str(path) in message
    for needle in expected:
        assert needle in message, needle


def test_problem_derives_its_remainder():
    p = Problem.from_numbers(25736, 144)
    assert p.remainder == 104 and p.key == (25736, 144)
    assert parse_question(p.question) == p
    with pytest.raises(AttributeError):
        p.dividend = 1


@pytest.mark.parametrize("dividend,divisor", [(5, 0), (-1, 3), (5, -3), (0, 0)])
def test_problem_rejects_impossible_numbers(dividend, divisor):
    with pytest.raises(ValueError, match=rf"Problem\({dividend}, {divisor}\)"):
        Problem.from_numbers(dividend, divisor)
