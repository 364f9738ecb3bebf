"""The paper's own format trained until it stops improving (issue 41): a variant of `recchia-*` on the paper's 200
problems with the offline SmolLM2, at GPT-Neo's 2,048-token window by default, its learning curve probed on the
paper's 100 validation problems, then tested on generated interpolate problems: reports/paper.json, paper.png.

    LONGDIV_RUNS=~/longdiv-runs python -m experiments.paper --variant w [--context 2048] [--seed 0]
        [--probe_every 2] [--patience 2] [--max_epochs 24] [--num_test 100] [--probe forced]
        [--checkpoint_every 5] [--report_only] [-- extra CLI arguments]

The recipe is configs/recipes/paper-curve.yaml over the main one (configs/smollm2.yaml: batches of 8, lr 3e-4): a
constant learning rate after the warm-up, so that training can go on for as long as the curve rises and the curve is
not flattened by a decaying schedule, and the output layer computed for the format's lexicon alone. The fit runs
`--probe_every` epochs at a time; each chunk ends with the probe (a validation on the paper's problems, kept with
each epoch's optimizer steps, tokens seen and training loss in the run's history.json, and per problem in
validations/): `forced` (the default) reads each reference trace in one pass per window and counts the problems
whose whole trace greedy decoding would write (`val/trace_exact`, `--model.val_probe forced`: minutes where decoding
100 traces of 2,000 tokens takes a quarter of an hour on a CPU), and where the others would first go wrong;
`decode` writes and scores the traces (`val/remainder_acc`). Training stops when the probe has not reached a new
best for `--patience` probes in a row and (forced probe) the validation loss has not fallen 1% below its best in
them either, or at `--max_epochs`. After each probe that is the best so far (the most
traces right whole, then the lowest validation loss) the checkpoint is kept as
`checkpoints/best.ckpt` (a second name for the file, no copy); at the end the best checkpoint is tested by decoding
on the first `--num_test` of the 500 interpolate problems and on the paper's 100 validation problems (0: not
tested, the probe's curve only).

Long runs: the run folder is under `$LONGDIV_RUNS/paper/` (default runs/paper/), so it can outlive a work tree; a
checkpoint is saved every `--checkpoint_every` optimizer steps, so a stopped process loses at most those. Run the
same command again and it resumes from the newest checkpoint; a finished run is extended by a larger
`--max_epochs`. The record lists each process that trained it (`segments`: machine, steps, seconds) and, for every
probe and the test, the first wrong action of each trace by kind (see `kind`), and for each probe what teacher
forcing says of every action past the first error (`forced_actions`: the actions of each kind greedy decoding
would write right after a right prefix, and the traces it would write whole if the copy of the problem were given).
"""

from __future__ import annotations

import argparse
import bisect
import functools
import json
import os
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments import runner
from longdiv import identity, runs
from longdiv.data.formats import get_format
from longdiv.data.formats.recchia import SCRATCH_X, VARIANTS
from longdiv.data.problems import Problem
from longdiv.tokenizers import load_tokenizer

RUNS = runs.root() / "paper"
OUT = Path("reports/paper.json")
RECIPE = "configs/recipes/paper-curve.yaml"
PROBES = {"forced": "val/trace_exact", "decode": "val/remainder_acc"}  # --probe: what its history holds


# Where traces go wrong: the reference and a generated trace are split into actions (a write, a look, a `clear`, a
# note in braces), and the first action that differs is sorted into a kind by what the right action does on the grid:
# - `copy`: the first action, which writes the divisor, the bracket and the dividend onto row 2 of the grid;
# - `comparison`: the quotient digit grows where the trace should stop adding, or the reverse (W writes no compare);
# - `addition`: a digit of a running multiple, built by repeated addition in the scratch area;
# - `scratch`: setting up or clearing the scratch area;
# - `grid`: the multiple written under the current number, subtraction with borrows, leading zeros erased, the next
#   digit brought down;
# - `look` and `note` (LN+, L+): reading cells back and narrating; `answer`: the claim read off a right grid;
# - `unfinished`: every action right, but the trace stops before the end.
ACTION = re.compile(r"(?:write|look)(?: \d\d+,\d\d+:\d+ \S+)+|clear|\{[^}]*\}")
CELL = re.compile(r"(\d\d+),(\d\d+):\d+ (\S+)")


def actions(text: str) -> list[str]:
    return ACTION.findall(text)


def cells(action: str) -> list[tuple[int, int, str]]:
    return [(int(x), int(y), ch) for x, y, ch in CELL.findall(action)]


def is_quotient_step(found: list[tuple[int, int, str]]) -> bool:
    """Whether an action's cells raise the quotient digit on row 1 (with the next divisor copy), as W writes it."""
    return bool(found) and found[0][1] == 1 and found[0][0] < SCRATCH_X and len(found) > 1


def kind(reference: list[str], at: int, generated: list[str] | None = None) -> str:
    """The kind of the first wrong action, `reference[at]`; `generated` is the trace that went wrong there, or None
    when only the place is known (a forced probe)."""
    if generated is not None and at >= len(generated):
        return "unfinished"
    if at == 0:
        return "copy"
    right = reference[at]
    if right.startswith("{ final remainder is"):
        return "answer"
    if right.startswith("{"):
        return "note"
    if right.startswith("look"):
        return "look"
    found = cells(right)
    if is_quotient_step(found) or (generated is not None and is_quotient_step(cells(generated[at]))):
        return "comparison"
    if right == "clear":
        return "scratch"
    if all(x >= SCRATCH_X for x, _, _ in found):
        return "addition" if len(found) == 1 and found[0][2].isdigit() else "scratch"
    return "grid"


def grid_steps(reference: list[str]) -> list[str | None]:
    """The step of long division each `grid` action of a reference trace takes (None for other kinds), found by
    replaying the writes onto the grid: `quotient` (a new quotient digit started at 0 on row 1), `multiple` (the
    multiple of the divisor and its minus sign, written under the current number), `borrow` (a digit written over
    one already on the grid: a borrow, or `_` erasing leading zeros), `difference` (a digit of the subtraction's
    result) and `bring-down` (the next dividend digit, written on the result's row right of the multiple above).
    Each but `multiple` and `quotient` needs a digit written far back in the trace: W has no looks to fetch it."""
    grid: dict[tuple[int, int], str] = {}
    steps: list[str | None] = []
    for i, action in enumerate(reference):
        found, step = cells(action), None
        if i and kind(reference, i) == "grid":
            if all(y == 1 for _, y, _ in found):
                step = "quotient"
            elif any(ch == "-" or y % 2 for _, y, ch in found):
                step = "multiple"
            elif any((x, y) in grid for x, y, _ in found):
                step = "borrow"
            elif all(x > max((c for c, r in grid if r == y - 1 and c < SCRATCH_X), default=x) for x, y, _ in found):
                step = "bring-down"
            else:
                step = "difference"
        grid |= {(x, y): ch for x, y, ch in found}
        steps.append(step)
    return steps


def first_error(reference: list[str], generated: list[str]) -> tuple[str, int]:
    """The kind and index of the first generated action that differs from the reference."""
    at = next((i for i, (a, b) in enumerate(zip(reference, generated)) if a != b), min(len(reference), len(generated)))
    if at == len(reference):
        return ("right trace" if len(generated) == len(reference) else "runs on past the answer"), at
    return kind(reference, at, generated), at


def reference(fmt, row: dict) -> str:
    return _rendered(fmt, row["dividend"], row["divisor"], row["question"])


@functools.lru_cache(maxsize=4096)
def _rendered(fmt, dividend: int, divisor: int, question: str) -> str:
    """A problem's reference trace, rendered once however many analyses of a report read it."""
    return fmt.render(Problem(dividend, divisor, question))[1]


def decoded_errors(fmt, rows: list[dict]) -> dict[str, int]:
    """First wrong actions of decoded traces (predictions.jsonl rows), by kind."""
    return dict(Counter(first_error(actions(reference(fmt, r)), actions(r["generated"]))[0]
                        for r in rows).most_common())


def detail(reference: list[str], generated: list[str]) -> str:
    """The first wrong action of a decoded trace, finer than its kind: a `grid` action by its step of the division
    (`grid: quotient, first` where the first quotient digit goes, which depends on whether the divisor fits under as
    many leading digits of the dividend as it has), a `comparison` by which way it went (`went on adding` past the
    current number, or `stopped early`). Both are decisions W leaves unwritten."""
    name, at = first_error(reference, generated)
    if name == "grid":
        steps = grid_steps(reference)
        first = steps[at] == "quotient" and "quotient" not in steps[:at]
        step = steps[at]
        return f"grid: {step}" + (", first" if first else "")
    if name == "comparison":
        return "comparison: " + ("went on adding" if is_quotient_step(cells(generated[at])) else "stopped early")
    return name


def decoded_details(fmt, rows: list[dict]) -> dict[str, int]:
    """First wrong actions of decoded traces, by `detail`."""
    return dict(Counter(detail(actions(reference(fmt, r)), actions(r["generated"])) for r in rows).most_common())


def first_wrong_tokens(fmt, rows: list[dict], tokenizer, context: int) -> dict[str, dict]:
    """Where decoded traces first go wrong, in tokens, by `detail`: the median number of tokens written before the
    first wrong action, and how many traces wrote it after their first window had filled (prompt and completion
    past `context` tokens, so that the window had slid away from the start of the trace)."""
    found: dict[str, list[tuple[int, bool]]] = {}
    for r in rows:
        prompt, right = fmt.render(Problem(r["dividend"], r["divisor"], r["question"]))
        spans, reference_ = list(ACTION.finditer(r["generated"])), actions(right)
        generated = [m[0] for m in spans]
        name, at = detail(reference_, generated), first_error(reference_, generated)[1]
        before = len(tokenizer(r["generated"][:spans[at].start() if at < len(spans) else None])["input_ids"])
        found.setdefault(name, []).append((before, len(tokenizer(prompt)["input_ids"]) + before > context))
    return {name: {"median_tokens_before": statistics.median(b for b, _ in v), "after_a_slide": sum(s for _, s in v)}
            for name, v in sorted(found.items(), key=lambda kv: -len(kv[1]))}


def probed_errors(fmt, rows: list[dict]) -> dict[str, int]:
    """First wrong actions under a forced probe (validations/*.jsonl rows): the reference action that holds the
    first token greedy decoding would get wrong (or that the token should have ended), by kind."""
    kinds = Counter()
    for row in rows:
        if row["first_wrong_char"] is None:
            kinds["right trace"] += 1
            continue
        spans = list(ACTION.finditer(reference(fmt, row)))
        # A wrong token right after an action (the space that starts the next one) is that action not ending.
        at = next((i for i, m in enumerate(spans) if m.end() >= row["first_wrong_char"]), len(spans) - 1)
        kinds[kind([m[0] for m in spans], at)] += 1
    return dict(kinds.most_common())


def cell_field(text: str, start: int, end: int, at: int) -> str:
    """Which part of a cell of the action `text[start:end]` character `at` falls in: `column` or `row` (its
    coordinates), `tag` (its in-word position), `value` (the character written), or `end` (the action not ending,
    or a cell begun where none should be)."""
    for cell in CELL.finditer(text, start, end):
        for field, group in (("column", 1), ("row", 2), ("value", 3)):
            if cell.start(group) <= at < cell.end(group):
                return field
        if cell.end(2) < at < cell.start(3):
            return "tag"
    return "end"


def forced_actions(fmt, rows: list[dict]) -> dict:
    """What teacher forcing says beyond the first error (validations/*.jsonl rows with `wrong_chars`): for each kind,
    the reference actions whose every token is greedy decoding's choice when all before it are right, as [right,
    of], and the same for the grid actions by step of the division (`grid_steps`), with where in their cells the
    wrong tokens fall (`grid_fields`: column, row, tag, value, end); and the traces with no wrong token after the copy
    (`right_after_copy`): those greedy decoding would write whole if the copy of the problem onto the grid, and its
    end, were given; and how many traces have how many actions with a wrong token (`wrong_actions`, {actions:
    traces}: how far the traces are from being written whole, which moves before `val/trace_exact` does)."""
    right, total, after_copy, fields, per_trace = Counter(), Counter(), 0, {}, Counter()
    for row in rows:
        text = reference(fmt, row)
        spans = list(ACTION.finditer(text))
        ends, names = [m.end() for m in spans], [m[0] for m in spans]
        # a wrong token right after an action (the space that starts the next one) is that action not ending
        wrong = [(min(bisect.bisect_left(ends, at), len(spans) - 1), at) for at in row["wrong_chars"]]
        bad = {i for i, _ in wrong}
        steps = grid_steps(names)
        for i, step in enumerate(steps):
            for name in (kind(names, i), step and f"grid: {step}"):
                if name:
                    total[name] += 1
                    right[name] += i not in bad
        for i, at in wrong:
            if steps[i]:
                fields.setdefault(steps[i], Counter())[cell_field(text, spans[i].start(), spans[i].end(), at)] += 1
        after_copy += not bad - {0}
        per_trace[len(bad)] += 1
    counts = {k: [right[k], total[k]] for k, _ in total.most_common()}
    return {"actions": {k: v for k, v in counts.items() if not k.startswith("grid: ")},
            "grid_steps": {k.removeprefix("grid: "): v for k, v in counts.items() if k.startswith("grid: ")},
            "grid_fields": {step: dict(found.most_common()) for step, found in fields.items()},
            "right_after_copy": after_copy, "wrong_actions": dict(sorted(per_trace.items()))}


def copy_errors(fmt, rows: list[dict]) -> dict[str, int]:
    """Where in the copy of the problem (the first action) the first wrong token falls, for the forced probe's rows
    whose first error is there: a cell's `value` (a wrong digit), `tag`, `column` or `row`, `end` (a cell begun where
    none should be), or `does not end` (the token after the copy's last cell)."""
    where = Counter()
    for row in rows:
        text, at = reference(fmt, row), row["first_wrong_char"]
        copy = ACTION.search(text)
        if at is not None and at <= copy.end():
            where["does not end" if at == copy.end() else cell_field(text, copy.start(), copy.end(), at)] += 1
    return dict(where.most_common())


def probe_errors(path: Path, fmt) -> list[dict]:
    """The forced probes' first wrong actions by kind (and for the copy, where in it: `copy_errors`), one entry per
    probe of the run in `path`, with what teacher forcing says of every action where the probe kept every wrong token
    (`forced_actions`)."""
    out = []
    for file in sorted((path / "validations").glob("step-*.jsonl")):
        rows = runs.read_jsonl(file)
        if rows and "first_wrong_char" in rows[0]:
            out.append({"step": int(file.stem.removeprefix("step-")), "n": len(rows),
                        "first_wrong": probed_errors(fmt, rows), "copy_errors": copy_errors(fmt, rows),
                        **(forced_actions(fmt, rows) if "wrong_chars" in rows[0] else {})})
    return out


def folder(variant: str, seed: int, context: int, probe: str = "forced") -> Path:
    return RUNS / f"recchia-{variant}-n200-s{seed}-c{context}{'' if probe == 'forced' else '-' + probe}"


def history(path: Path) -> list[dict]:
    file = path / "history.json"
    return json.loads(file.read_text()) if file.is_file() else []


def probes(curve: list[dict]) -> list[float]:
    return [entry[key] for entry in curve for key in PROBES.values() if key in entry]


LEARNING = 0.01  # a validation loss this share below its best so far: the model is still learning the traces


def flat(curve: list[dict], patience: int) -> bool:
    """True when the last `patience` probes have not beaten the best probe before them, and (with the forced probe,
    which measures it) have not lowered the validation loss per token by `LEARNING` of its best before them: while
    no more traces come out whole, the model may still be learning their tokens, and a curve stuck at none is not
    flat until that stops too."""
    seen = probes(curve)
    if len(seen) <= patience or max(seen[-patience:]) > max(seen[:-patience]):
        return False
    losses = [entry["val/loss"] for entry in curve if "val/loss" in entry]
    return len(losses) <= patience or min(losses[-patience:]) > (1 - LEARNING) * min(losses[:-patience])


def best_probe(curve: list[dict]) -> int | None:
    """The index in `curve` of the best probe: the most traces right (`val/trace_exact`, or the decoded accuracy),
    then the lowest validation loss per token (the forced probe's; the share of each trace right before its first
    error would rank by where one early error falls, as long as one comes first in every trace); the earliest of
    equals."""
    probed = [i for i, entry in enumerate(curve) if any(key in entry for key in PROBES.values())]
    score = [(*(curve[i].get(key, -1.0) for key in PROBES.values()), -curve[i].get("val/loss", 0.0)) for i in probed]
    return probed[score.index(max(score))] if probed else None


def keep_best(path: Path) -> None:
    """Makes `checkpoints/best.ckpt` the checkpoint of the curve's best probe when that is its last one: a hard link
    to `last.ckpt` as it is after that epoch (the next save replaces `last.ckpt` by a new file, not in place)."""
    curve, ckpt = history(path), path / "checkpoints" / "last.ckpt"
    if not curve or best_probe(curve) != len(curve) - 1 or not ckpt.is_file():
        return
    if identity.read(ckpt)["step"] != curve[-1]["step"]:  # a chunk stopped inside the epoch after its probe
        return
    tmp = ckpt.with_name(".best.ckpt.tmp")
    tmp.unlink(missing_ok=True)
    os.link(ckpt, tmp)
    os.replace(tmp, ckpt.with_name("best.ckpt"))
    (path / "checkpoints" / "best.json").write_text(json.dumps({**curve[-1], "epochs": len(curve)}, indent=1) + "\n")


def train(variant: str, seed: int, context: int, probe: str, probe_every: int, patience: int, max_epochs: int,
          checkpoint_every: int, extra: list[str]) -> Path:
    """Fits `probe_every` epochs at a time until the probe is flat or `max_epochs` are done, keeping the best
    checkpoint after each; returns the folder."""
    path = folder(variant, seed, context, probe)
    while True:
        keep_best(path)
        curve = history(path)
        done = len(curve)  # epochs finished (a checkpoint may hold part of the next one)
        if done >= max_epochs or flat(curve, patience):
            return path
        ckpt = path / "checkpoints" / "last.ckpt"
        runner.cli(["fit", "--config", runner.CONFIG, f"--data.format=recchia-{variant}", "--data.num_demos=200",
                    f"--seed_everything={seed}", f"--data.context={context}",
                    f"--checkpoint_every_n_steps={checkpoint_every}", "--config", RECIPE,
                    f"--trainer.max_epochs={min(max_epochs, (done // probe_every + 1) * probe_every)}",
                    f"--trainer.check_val_every_n_epoch={probe_every}", f"--model.val_probe={probe}",
                    "--test_after_fit=false",
                    f"--trainer.default_root_dir={path}", *([f"--ckpt_path={ckpt}"] if ckpt.is_file() else []),
                    *extra])


def test_folder(path: Path, num_test: int) -> Path:
    """Where the curve's test on `num_test` interpolate problems goes: one per trained length."""
    return path / f"test-e{len(history(path))}-t{num_test}"


def test(path: Path, num_test: int, extra: list[str]) -> Path | None:
    """The best checkpoint (the last where none was kept) decoded on the first `num_test` interpolate problems, then
    on the paper's 100 validation problems (`paper_val/` inside), once per trained length; none for 0."""
    if num_test == 0:
        return None
    best = path / "checkpoints" / "best.ckpt"
    ckpt = best if best.is_file() else path / "checkpoints" / "last.ckpt"
    tested = test_folder(path, num_test)
    for folder_, problems in ((tested, f"--data.num_test={num_test}"), (tested / "paper_val",
                                                                         f"--data.test_file={runner.PAPER_VAL}")):
        if runs.tested(folder_) is None:
            runner.cli(["test", f"--ckpt_path={ckpt}", problems, f"--trainer.default_root_dir={folder_}", *extra])
    return tested


def record(variant: str, probe: str, path: Path, tested: Path | None, patience: int, max_epochs: int) -> dict:
    fit, curve, fmt = runs.read(path), history(path), get_format(f"recchia-{variant}")
    test = runs.tested(tested) if tested else {"metrics": {}, "eval_seconds": None, "git_commit": fit.get("git_commit")}
    paper = runs.tested(tested / "paper_val") if tested else None
    keep = ("n_eval", "correct", "accuracy", "wilson_low", "wilson_high", "parse_failures")
    decoded = runs.read_jsonl(tested / "predictions.jsonl") if tested and (tested / "predictions.jsonl").is_file() \
        else None
    model = fit["config"].get("model")  # the tokenizer the run read, where its record says
    tokenizer = identity.tokenizer_name(model["model"], model.get("tokenizer")) if model else None
    return {
        "variant": variant, "format": f"recchia-{variant}", "context": fit["context"],
        "seed": fit["config"]["seed_everything"], "probe": PROBES[probe],
        "epochs": len(curve), "steps": curve[-1]["step"] if curve else 0,
        "tokens_seen": curve[-1].get("tokens") if curve else 0,
        "stop_rule": f"{patience} probes in a row without a new best {PROBES[probe]}"
        + (f" or a validation loss {LEARNING:.0%} below its best" if probe == "forced" else "")
        + f", or {max_epochs} epochs",
        "stopped": "probe flat" if flat(curve, patience) else "max_epochs" if len(curve) >= max_epochs
        else "in progress",
        "history": curve,
        "best_probe": max(probes(curve), default=None),
        "interpolate": {k: test[k] for k in keep} if tested else None,
        # the probe chose the tested checkpoint on these problems: not a held-out figure, unlike `interpolate`
        "paper_val": {k: paper[k] for k in keep} | {"held_out": False} if paper else None,
        "tested_checkpoint": (test.get("checkpoint") or {}).get("path"),
        "best": json.loads((path / "checkpoints" / "best.json").read_text())
        if (path / "checkpoints" / "best.json").is_file() else None,
        "error_kinds": {k.removeprefix("test/err_"): int(v) for k, v in test["metrics"].items() if "err_" in k},
        "probe_first_wrong": probe_errors(path, fmt),
        "test_first_wrong": decoded_errors(fmt, decoded) if decoded else None,
        "test_first_wrong_detail": decoded_details(fmt, decoded) if decoded else None,
        "test_first_wrong_tokens": first_wrong_tokens(fmt, decoded, load_tokenizer(tokenizer), fit["context"])
        if decoded and tokenizer else None,
        "mean_tokens": round(fit["mean_tokens"], 1), "max_tokens": fit["max_tokens"],
        "train_windows": fit["train_windows"], "fit_seconds": fit.get("fit_seconds"),
        # machine hours of the processes that trained it (each on its whole machine), and what each ran where
        "machine_hours": round(sum(seg["seconds"] for seg in fit.get("segments", [])) / 3600, 2),
        "segments": fit.get("segments", []),
        "eval_seconds": test["eval_seconds"], "device": fit["device"], "precision": fit["precision"],
        "run_dir": str(path), "test_dir": str(tested) if tested else None, "git_commit": test["git_commit"],
    }


def start(record: dict) -> tuple:
    """A run is its folder and the start of its first process: the same folder begun again on another machine (a new
    machine has none of the old one's checkpoints) is another run."""
    first = (record.get("segments") or [{}])[0]
    return record["run_dir"], first.get("device"), first.get("started")


def save(new: list[dict]) -> None:
    """Adds `new` records to reports/paper.json (each replacing an earlier one of its run) and plots them all. An
    earlier start of the same run folder stays, marked as given up when it was still in progress."""
    starts, folders = {start(r) for r in new}, {r["run_dir"] for r in new}
    given_up = [r | {"stopped": "begun again on another machine"} for r in runner.read_report(OUT).get("records", [])
                if r["run_dir"] in folders and start(r) not in starts and r["stopped"] == "in progress"]
    done = runner.update_report(OUT, given_up + new, start, command="python -m experiments.paper")
    plot(done, OUT.with_suffix(".png"))


def plot(records: list[dict], path: Path) -> None:
    """Top row, a colour per run: training loss and the probe against optimizer steps, the probe (and the decoded test
    of the checkpoint it chose) against training tokens seen, and the median trace's actions with a wrong token
    under teacher forcing. Below, a row for each run with probe details: the share of each kind of action, and of the
    grid's actions by step, that greedy decoding gets right after a right prefix (each kind in one colour in every
    row)."""
    detailed = [r for r in records if any("actions" in probe for probe in r.get("probe_first_wrong") or [])]
    last_step = max((e.get("step", 0) for r in detailed for e in r["history"]), default=1)
    fig = plt.figure(figsize=(20, 4.5 * (1 + len(detailed))))
    grid = fig.add_gridspec(1 + len(detailed), 12)
    loss_ax, step_ax, token_ax, wrong_ax = (fig.add_subplot(grid[0, 3 * i:3 * i + 3]) for i in range(4))
    colours: dict[str, dict[str, tuple]] = {"actions": {}, "grid_steps": {}}  # a kind's colour, in every row
    row = 0
    for number, r in enumerate(records):
        run_colour = f"C{number % 10}"  # each run one colour in the top row, its lines told apart by their style
        first = (r.get("segments") or [{}])[0]  # which start of the run: its first machine and day
        machine = re.sub(r"\(R\)|Processor|cpu: |cuda: ", "", first.get("device", "")).split()
        # a machine of the same kind may begin the same run again on the same day: the hour tells them apart
        begun = f", {' '.join(machine[:2])} {first['started'][5:16].replace('T', ' ')}" if machine else ""
        trained = (r.get("precision") or {}).get("train")  # one machine kind can train a run in bf16, another in fp32
        label = f"{r['format']}{begun}{f' {trained}' if trained else ''}: {r['probe'].removeprefix('val/')}"
        if r in detailed:
            row += 1
            for column, field, title in ((0, "actions", "each action after a right prefix, by kind"),
                                         (6, "grid_steps", "the grid's actions after a right prefix, by step")):
                ax = fig.add_subplot(grid[row, column:column + 6])
                for kind_, _ in Counter(k for probe in r["probe_first_wrong"] for k in probe.get(field, {})
                                        ).most_common():
                    colour = colours[field].setdefault(kind_, plt.get_cmap("tab10")(len(colours[field]) % 10))
                    probed = [probe for probe in r["probe_first_wrong"] if kind_ in probe.get(field, {})]
                    ax.plot([probe["step"] for probe in probed],
                            [probe[field][kind_][0] / probe[field][kind_][1] for probe in probed], marker="o",
                            color=colour, label=kind_)
                ax.set(xlabel="optimizer step", ylabel="right under teacher forcing", ylim=(0, 1.02),
                       xlim=(0, last_step * 1.02),
                       title=f"{r['format']}{begun}: {title}")
                ax.legend(fontsize=7, loc="lower right", ncol=2)
        curve = [e for e in r["history"] if "step" in e]
        loss_ax.plot([e["step"] for e in curve], [e["train_loss"] for e in curve], marker=".", color=run_colour,
                     label=label)
        probed = [e for e in curve if r["probe"] in e]
        step_ax.plot([e["step"] for e in probed], [e[r["probe"]] for e in probed], marker="o", color=run_colour,
                     label=label)
        counted = [e for e in probed if "tokens" in e]  # records before tokens were counted have none
        token_ax.plot([e["tokens"] / 1e6 for e in counted], [e[r["probe"]] for e in counted], marker="o",
                      color=run_colour, label=label)
        spread = [(probe["step"], {int(k): n for k, n in probe["wrong_actions"].items()})
                  for probe in r.get("probe_first_wrong") or [] if "wrong_actions" in probe]
        if spread:  # the median trace's actions with a wrong token under teacher forcing
            wrong_ax.plot([step for step, _ in spread],
                          [statistics.median(k for k, n in found.items() for _ in range(n)) for _, found in spread],
                          marker="o", color=run_colour, label=f"{r['format']}{begun}")
        if r.get("interpolate") and r.get("best"):  # the decoded test of the best probe's checkpoint
            for ax, x, scale in ((step_ax, "step", 1), (token_ax, "tokens", 1e6)):
                if x in r["best"]:
                    ax.plot([r["best"][x] / scale], [r["interpolate"]["accuracy"]], marker="*", markersize=12,
                            linestyle="none", color=run_colour,
                            label=f"{r['format']}{begun}: decoded, {r['interpolate']['n_eval']} interpolate problems")
        # the forced probe's share of each trace right before its first wrong token, mean over problems
        partial = [e for e in probed if "val/trace_right" in e]
        for ax, x in ((step_ax, "step"), (token_ax, "tokens")):
            scale = 1e6 if x == "tokens" else 1
            ax.plot([e[x] / scale for e in partial if x in e], [e["val/trace_right"] for e in partial if x in e],
                    linestyle="--", marker=".", color=run_colour,
                    label=f"{r['format']}{begun}: share right before the first error")
    loss_ax.set(xlabel="optimizer step", ylabel="training loss (mean per token)", yscale="log")
    loss_ax.legend(fontsize=7)
    for ax, xlabel in ((step_ax, "optimizer step"), (token_ax, "training tokens seen (millions)")):
        ax.set(xlabel=xlabel, ylabel="probe on the paper's 100 validation problems", ylim=(0, 1))
        ax.axhline(0.8, color="gray", linestyle=":", label="the paper's GPT-Neo-125M (>80%)")
    step_ax.legend(fontsize=7)
    wrong_ax.set(xlabel="optimizer step", ylabel="actions with a wrong token under teacher forcing",
                 title="how far the median trace is from whole", ylim=(0, None))
    wrong_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    own, extra = runner.split_extra(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=VARIANTS, default="w")
    parser.add_argument("--context", type=int, default=2048, help="the window in tokens; 2048 is GPT-Neo's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe_every", type=int, default=2, help="epochs between probes")
    parser.add_argument("--patience", type=int, default=2, help="probes without a new best before stopping")
    parser.add_argument("--max_epochs", type=int, default=24)
    parser.add_argument("--num_test", type=int, default=100)
    parser.add_argument("--checkpoint_every", type=int, default=5,
                        help="optimizer steps between checkpoints: a stopped process loses at most these")
    parser.add_argument("--probe", choices=PROBES, default="forced",
                        help="forced: traces greedy decoding would write whole, read in one pass; decode: written")
    parser.add_argument("--report_only", action="store_true",
                        help="write the report from the run as it stands (its last finished chunk, and a finished "
                             "test of it on --num_test problems), training nothing")
    args = parser.parse_args(own)
    if args.report_only:
        path = folder(args.variant, args.seed, args.context, args.probe)
        if not (path / runs.RECORD_FILE).is_file():
            raise SystemExit(f"{path}: no finished chunk yet (no {runs.RECORD_FILE})")
        tested = test_folder(path, args.num_test)  # its test, where one of the curve as it stands has finished
        tested = tested if args.num_test and runs.tested(tested) else None
    else:
        path = train(args.variant, args.seed, args.context, args.probe, args.probe_every, args.patience,
                     args.max_epochs, args.checkpoint_every, extra)
        tested = test(path, args.num_test, extra)
    new = record(args.variant, args.probe, path, tested, args.patience, args.max_epochs)
    save([new])
    scored = new["interpolate"]
    tested = f", interpolate {scored['accuracy']:.1%} ({scored['correct']}/{scored['n_eval']})" if scored else ""
    print(f"{new['format']}: {new['epochs']} epochs ({new['stopped']}), best probe {new['best_probe']}{tested}")


if __name__ == "__main__":
    main()
