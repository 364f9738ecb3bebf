"""Distributed evaluation through the real CLI: two CPU processes (gloo) with uneven shards and scripted answers count
every problem exactly once, and evaluate the problems one process does."""

import json
import os
import subprocess
import sys

import pytest

from longdiv.cli import RUN_DIR_ENV, main

EVAL = ["--config", "configs/tiny.yaml", "--data.format=direct", "--data.num_test=7", "--data.eval_batch_size=2",
        "--num_samples=3"]


def evaluation(folder):
    (run,) = [p for p in folder.iterdir() if (p / "predictions.jsonl").is_file()]
    lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    samples = [json.loads(x) for x in (run / "samples-test-epoch0.jsonl").read_text().splitlines()]
    return json.loads((run / "run.json").read_text()), lines, samples


def test_two_processes_count_each_problem_once(tmp_path):
    # Scripted generations: the rank with 4 of the 7 problems answers 3 right, the rank with 3 answers none, so only
    # a merge that counts every problem once reports 3/7 (averaging the ranks would give 3/8, rank 0 alone 3/4).
    scripted = ('--trainer.callbacks+={"class_path": "tests.scripted_answers.ScriptedAnswers", '
                '"init_args": {"right": [3, 0]}}')
    env = {k: v for k, v in os.environ.items() if k not in (RUN_DIR_ENV, "LOCAL_RANK")}
    proc = subprocess.run(
        [sys.executable, "-m", "longdiv", "test", *EVAL, scripted, "--trainer.strategy=ddp", "--trainer.devices=2",
         "--trainer.accelerator=cpu", f"--runs_dir={tmp_path / 'ddp'}"],
        env=env | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    main(["test", *EVAL, f"--runs_dir={tmp_path / 'one'}"])

    ddp_record, ddp_lines, ddp_samples = evaluation(tmp_path / "ddp")
    _, one_lines, one_samples = evaluation(tmp_path / "one")
    assert sorted(x["index"] for x in ddp_lines) == list(range(7))
    assert (ddp_record["n_eval"], ddp_record["correct"], ddp_record["accuracy"]) == (7, 3, 3 / 7)
    assert ddp_record["metrics"]["test/remainder_acc"] == pytest.approx(3 / 7)  # a float32 mean
    assert ddp_record["metrics"]["test/parse_fail_rate"] == 0
    assert sum(x["correct"] for x in ddp_lines) == 3 and all(x["parsed"] is not None for x in ddp_lines)
    # The same problems as one process evaluates, each under its own index.
    fields = ("index", "question", "dividend", "divisor", "expected")
    assert [[x[f] for f in fields] for x in ddp_lines] == [[x[f] for f in fields] for x in one_lines]
    # The sample table holds the first problems overall, with their answers, though each process evaluated only
    # some of them.
    assert [x["index"] for x in ddp_samples] == [0, 1, 2]
    assert [[x[f] for f in ("question", "expected")] for x in ddp_samples] == [
        [x[f] for f in ("question", "expected")] for x in one_samples]
    assert [[x["parsed"], x["correct"]] for x in ddp_samples] == [[x["parsed"], x["correct"]] for x in ddp_lines[:3]]
