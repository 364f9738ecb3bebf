"""Ask a fitted model division questions and see how it worked them out.

    python -m longdiv ask --ckpt_path runs/<run>/checkpoints/last.ckpt "What is the remainder when 93 is divided by 59?"
    python -m longdiv ask --ckpt_path exported/<name> 123456 789      # a dividend and a divisor
    python -m longdiv ask --ckpt_path CKPT --file questions.txt       # one question per line, answers optional

`--ckpt_path` is a Lightning checkpoint, a run folder (its checkpoints/last.ckpt) or a folder written by
`python -m longdiv export` (its `longdiv.json`
names the format). The model decodes greedily, as evaluation does, from the prompt of the format it was trained
on. For each question this prints the trace the model wrote, the remainder parsed from it and whether that is
right: the true remainder is computed from the question. Where the format's verifier finds a wrong step, that
line is marked `>>`:

    What is the remainder when 93 is divided by 59?
       p99.50.00.
       -90.55-09-
       q93.59.00.
    >> -94-54.00.
       -95-58-09-
       R94-54.00.
    remainder 44: wrong, the true remainder is 34
    first wrong step: line 4 of the trace (subtraction), marked >>
"""

from __future__ import annotations

import json
from pathlib import Path

from longdiv import errors, identity
from longdiv.data.problems import Problem, parse_question, read_questions
from longdiv.export import SETTINGS


def load(path: Path, format: str | None = None, weights_only: bool = True):
    """The DivisionLM at `path` (a checkpoint or an exported folder), set to decode greedily, in `format` if given
    and otherwise in the format it was trained on, and the context it was trained in (None: the model's window;
    a longer trace generates in a sliding window of that context, as its evaluation did)."""
    from longdiv.models.module import DivisionLM

    if not path.is_dir():
        module, found = identity.load(path, weights_only, votes=1, **({"format": format} if format else {}))
        return module.eval(), found["saved"]["data"].get("context")
    settings = path / SETTINGS
    if (path / "checkpoints" / "last.ckpt").is_file() and not settings.is_file():  # a run folder, not an export
        return load(path / "checkpoints" / "last.ckpt", format, weights_only)
    if format is None and not settings.is_file():
        raise errors.UsageError("exported folder", f"--ckpt_path {path}",
                                f"no {SETTINGS} names the format the model was trained on",
                                "export the checkpoint again with `python -m longdiv export`, or pass --format")
    saved = json.loads(settings.read_text()) if settings.is_file() else {}
    return DivisionLM(model=str(path), format=format or saved["format"]).eval(), saved.get("context")


def questions(words: list[str]) -> list[Problem]:
    """Problems from the command line: each word a question, or two words a dividend and a divisor."""
    if len(words) == 2 and all(w.isascii() and w.isdigit() for w in words):
        words = [f"What is the remainder when {words[0]} is divided by {words[1]}?"]
    try:
        return [parse_question(word, f"question {i}") for i, word in enumerate(words, start=1)]
    except ValueError as err:
        raise ValueError(f"{err}; quote each question" if len(words) > 2 else str(err)) from None


def answer(module, problems: list[Problem], context: int | None = None) -> list[dict]:
    """The record of each problem (as `predict` writes them), in the order given: the data module renders and
    batches the prompts (in `context`, by default the model's window), and the module's `predict_step` decodes and
    scores them."""
    data = identity.data_for(module, context=context)
    data.predict_on(problems)
    records = [r for i, batch in enumerate(data.predict_dataloader()) for r in module.predict_step(batch, i)]
    return sorted(records, key=lambda r: r["index"])


def show(record: dict) -> str:
    """A record for people: the question, the trace with its first wrong step marked `>>`, and the verdict."""
    step, lines = record["error_step"], record["generated"].splitlines()
    out = [record["question"]]
    out += [(">> " if i == step else "   ") + line for i, line in enumerate(lines)]
    if step is not None and step >= len(lines):
        out.append(">> (the trace stops here)")
    said = "no remainder" if record["parsed"] is None else f"remainder {record['parsed']}"
    verdict = "right" if record["correct"] else f"wrong, the true remainder is {record['expected']}"
    out.append(f"{said}: {verdict}")
    if step is not None:
        out.append(f"first wrong step: line {step + 1} of the trace ({record['error_kind']}), marked >>")
    elif record["error_kind"] is not None:
        out.append(f"verifier: {record['error_kind']} (this format's checker names no step)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = errors.ArgumentParser(prog="python -m longdiv ask", description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="*",
                        help='Questions, each quoted ("What is the remainder when 93 is divided by 59?"), or a '
                        "dividend and a divisor (93 59).")
    parser.add_argument("--ckpt_path", type=Path, required=True,
                        help="A checkpoint (runs/<run>/checkpoints/last.ckpt), its run folder, or a folder that "
                        "export wrote.")
    parser.add_argument("--file", type=Path, help="A file of questions, one per line; answers are optional.")
    parser.add_argument("--format", help="The format to prompt in; by default the one the model was trained on.")
    parser.add_argument("--unsafe_load", action="store_true",
                        help="Unpickle the checkpoint fully (can run code from the file): only for files you trust.")
    args = parser.parse_args(argv)
    if not args.question and args.file is None:
        parser.error("ask needs a question, a dividend and a divisor, or --file FILE")
    if not args.ckpt_path.exists():
        raise errors.UsageError("checkpoint", f"--ckpt_path {args.ckpt_path}", "no such file or folder",
                                "pass runs/<run>/checkpoints/last.ckpt or an exported folder")
    # Bad questions raise ValueError, which the error boundary of `python -m longdiv` prints as one line.
    problems = questions(args.question) + (read_questions(args.file) if args.file else [])
    module, context = load(args.ckpt_path, args.format, weights_only=not args.unsafe_load)
    records = answer(module, problems, context)
    print("\n\n".join(map(show, records)))
    return 0
