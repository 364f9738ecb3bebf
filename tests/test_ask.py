"""Asking a fitted model: `python -m longdiv ask` prints each question's trace, remainder and verdict, and
`predict` writes the same records for a file of questions without answers."""

import json

import pytest

from longdiv import ask
from longdiv.cli import main
from longdiv.data.formats import get_format
from longdiv.data.problems import parse_question, read_questions
from longdiv.errors import UsageError
from longdiv.export import main as export_main
from longdiv.models.module import DivisionLM
from tests import cli_process

QUESTION = "What is the remainder when 123456 is divided by 789?"
COMMANDS = ("fit", "validate", "test", "predict", "report", "sweep", "export", "ask")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A checkpoint of the tiny model (format subrow) after one optimizer step, written by a real fit."""
    runs = tmp_path_factory.mktemp("runs")
    run = main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_steps=1", "--data.num_demos=4",
                "--data.num_val=1", "--data.num_test=1", "--trainer.limit_val_batches=0", "--test_after_fit=false",
                "--num_samples=0", f"--runs_dir={runs}"])
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture
def questions_file(tmp_path):
    """Three questions: one alone, one with `|answer`, one with its answer on the next line (the DeepMind layout)."""
    path = tmp_path / "questions.txt"
    path.write_text(f"{QUESTION}\nCalculate the remainder when 93 is divided by 59.|34\n\n"
                    "What is the remainder when 7 is divided by 3?\n1\n")
    return path


def printed(out: str) -> list[dict]:
    """What `ask` printed, read back: per question, its text, the trace, the marked line and the verdict lines."""
    blocks = []
    for block in out.strip("\n").split("\n\n"):
        question, *lines = block.split("\n")
        trace = [line for line in lines if line[:3] in ("   ", ">> ")]
        blocks.append({
            "question": question,
            "trace": "\n".join(line[3:] for line in trace if line != ">> (the trace stops here)"),
            "marked": [i for i, line in enumerate(trace) if line.startswith(">> ")],
            "verdict": lines[len(trace):],
        })
    return blocks


def check_against_the_verifier(block: dict, fmt: str = "subrow") -> None:
    """The printed remainder is the format's parse of the printed trace, right or wrong by the question's own
    remainder, and the marked line is the verifier's first wrong step."""
    problem, fmt = parse_question(block["question"]), get_format(fmt)
    parsed, verdict = fmt.parse(block["trace"]), fmt.verify(problem, block["trace"])
    said = "no remainder" if parsed is None else f"remainder {parsed}"
    right = "right" if parsed == problem.remainder else f"wrong, the true remainder is {problem.remainder}"
    assert block["verdict"][0] == f"{said}: {right}"
    assert block["marked"] == ([] if verdict.step is None else [verdict.step])
    if verdict.step is not None:
        assert block["verdict"][1] == (
            f"first wrong step: line {verdict.step + 1} of the trace ({verdict.kind}), marked >>")


def test_ask_a_question_from_the_command_line(ckpt):
    done = cli_process.run("ask", "--ckpt_path", str(ckpt), QUESTION)
    assert done.returncode == 0, done.stderr
    (block,) = printed(done.stdout)
    assert block["question"] == QUESTION
    check_against_the_verifier(block)


def test_two_numbers_ask_the_same_question(ckpt, capsys):
    assert ask.main(["--ckpt_path", str(ckpt), "123456", "789"]) == 0
    numbers = capsys.readouterr().out
    ask.main(["--ckpt_path", str(ckpt), QUESTION])
    assert numbers == capsys.readouterr().out
    (block,) = printed(numbers)
    assert block["question"] == QUESTION
    check_against_the_verifier(block)


def test_ask_a_file_of_questions(ckpt, questions_file, capsys):
    ask.main(["--ckpt_path", str(ckpt), "--file", str(questions_file)])
    blocks = printed(capsys.readouterr().out)
    assert [b["question"] for b in blocks] == [p.question for p in read_questions(questions_file)]
    for block in blocks:
        check_against_the_verifier(block)


def test_the_first_wrong_step_is_marked(ckpt, capsys, monkeypatch):
    """A trace with a wrong subtraction on its fourth line, as if the model had written it; then the right trace."""
    wrong = "p99.50.00.\n-90.55-09-\nq93.59.00.\n-94-54.00.\n-95-58-09-\nR94-54.00.\n"
    right = get_format("subrow").render(parse_question("What is the remainder when 93 is divided by 59?"))[1]
    shown = {}
    for trace in (wrong, right):
        monkeypatch.setattr(DivisionLM, "generate", lambda self, *args, _trace=trace, **kwargs: [_trace])
        ask.main(["--ckpt_path", str(ckpt), "93", "59"])
        (shown[trace],) = printed(capsys.readouterr().out)
        assert shown[trace]["trace"] + "\n" == trace
        check_against_the_verifier(shown[trace])
    assert shown[wrong]["marked"] == [3] and shown[wrong]["verdict"] == [
        "remainder 44: wrong, the true remainder is 34",
        "first wrong step: line 4 of the trace (subtraction), marked >>"]
    assert shown[right]["marked"] == [] and shown[right]["verdict"] == ["remainder 34: right"]


def test_a_run_folder_answers_as_its_checkpoint(ckpt, capsys):
    assert ask.main(["--ckpt_path", str(ckpt.parent.parent), "123456", "789"]) == 0  # runs/<run>, not an export
    from_folder = capsys.readouterr().out
    assert ask.main(["--ckpt_path", str(ckpt), "123456", "789"]) == 0
    assert from_folder == capsys.readouterr().out
    (block,) = printed(from_folder)
    assert block["question"] == QUESTION
    check_against_the_verifier(block)


def test_an_exported_folder_answers_as_its_checkpoint(ckpt, tmp_path, capsys):
    assert export_main(["--ckpt_path", str(ckpt), "--out", str(tmp_path / "hf")]) == 0
    capsys.readouterr()
    assert ask.main(["--ckpt_path", str(tmp_path / "hf"), "123456", "789"]) == 0
    exported = capsys.readouterr().out
    assert ask.main(["--ckpt_path", str(ckpt), "123456", "789"]) == 0
    assert exported == capsys.readouterr().out
    (block,) = printed(exported)
    assert block["question"] == QUESTION
    check_against_the_verifier(block)
    (tmp_path / "hf" / "longdiv.json").unlink()
    with pytest.raises(UsageError, match="--format"):
        ask.main(["--ckpt_path", str(tmp_path / "hf"), "123456", "789"])


@pytest.mark.parametrize("option", ["predict_file", "test_file"])
def test_predict_writes_one_record_per_question(ckpt, questions_file, tmp_path, option):
    run = main(["predict", "--config", "configs/tiny.yaml", "--ckpt_path", str(ckpt), f"--data.{option}",
                str(questions_file), f"--runs_dir={tmp_path}", "--num_samples=0"])
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    problems = read_questions(questions_file)
    assert [r["question"] for r in records] == [p.question for p in problems]
    assert [r["index"] for r in records] == [0, 1, 2]
    fmt = get_format("subrow")  # the checkpoint's format: what each record says was written, read and checked
    for r, problem in zip(records, problems, strict=True):
        assert r["expected"] == r["dividend"] % r["divisor"] and r["correct"] == (r["parsed"] == r["expected"])
        verdict = fmt.verify(problem, r["generated"])
        assert (r["parsed"], r["error_kind"], r["error_step"]) == (fmt.parse(r["generated"]), verdict.kind,
                                                                   verdict.step)
    # The records that ask prints, for the same questions in one batch.
    module, context = ask.load(ckpt)
    assert records == ask.answer(module, problems, context)


def test_help_lists_every_command():
    done = cli_process.run("--help")
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ") and line.split()]
    assert listed == list(COMMANDS)


def test_questions_read_with_or_without_answers(tmp_path, questions_file):
    assert [(p.dividend, p.divisor) for p in read_questions(questions_file)] == [(123456, 789), (93, 59), (7, 3)]
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("What is the remainder when 7 is divided by 3?\n2\n")
    with pytest.raises(ValueError, match="line 2: answer 2 is wrong"):
        read_questions(wrong)


def test_ask_generates_in_the_context_its_checkpoint_trained_in(tmp_path, capsys, monkeypatch):
    run = main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_steps=1", "--data.num_demos=4",
                "--data.context=200", "--data.num_val=1", "--data.num_test=1", "--trainer.limit_val_batches=0",
                "--test_after_fit=false", "--num_samples=0", f"--runs_dir={tmp_path / 'runs'}"])
    ckpt = run / "checkpoints" / "last.ckpt"
    assert export_main(["--ckpt_path", str(ckpt), "--out", str(tmp_path / "hf")]) == 0
    contexts, real = [], DivisionLM.generate

    def spy(self, *args, **kwargs):
        contexts.append(kwargs.get("context"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DivisionLM, "generate", spy)
    for path in (ckpt, tmp_path / "hf"):
        ask.main(["--ckpt_path", str(path), "93", "59"])
    assert contexts == [200, 200]  # as the run's own test generated, not in the model's whole window
