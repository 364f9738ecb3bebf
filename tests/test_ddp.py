"""Distributed evaluation through the real CLI: two CPU processes (gloo) count every problem exactly once and
agree with one process on the same checkpoint."""

import json
import os
import subprocess
import sys

from longdiv.cli import RUN_DIR_ENV, main

EVAL = ["--config", "configs/tiny.yaml", "--data.format=direct", "--data.num_test=7", "--data.eval_batch_size=2",
        "--num_samples=3"]


def evaluation(folder):
    (run,) = [p for p in folder.iterdir() if (p / "predictions.jsonl").is_file()]
    lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    samples = [json.loads(x) for x in (run / "samples-test-epoch0.jsonl").read_text().splitlines()]
    return json.loads((run / "run.json").read_text()), lines, samples


def test_two_processes_count_each_problem_once(tmp_path):
    main(["fit", "--config", "configs/tiny.yaml", "--data.format=direct", "--trainer.max_epochs=1",
          "--data.num_demos=8", "--test_after_fit=false", f"--runs_dir={tmp_path / 'fit'}"])
    (ckpt,) = (tmp_path / "fit").glob("*/checkpoints/last.ckpt")
    env = {k: v for k, v in os.environ.items() if k not in (RUN_DIR_ENV, "LOCAL_RANK")}
    proc = subprocess.run(
        [sys.executable, "-m", "longdiv", "test", *EVAL, f"--ckpt_path={ckpt}", "--trainer.strategy=ddp",
         "--trainer.devices=2", "--trainer.accelerator=cpu", f"--runs_dir={tmp_path / 'ddp'}"],
        env=env | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    main(["test", *EVAL, f"--ckpt_path={ckpt}", f"--runs_dir={tmp_path / 'one'}"])

    ddp_record, ddp_lines, ddp_samples = evaluation(tmp_path / "ddp")
    one_record, one_lines, one_samples = evaluation(tmp_path / "one")
    assert sorted(x["index"] for x in ddp_lines) == list(range(7))
    # Generated text may differ in length: the budget of a generation that never stops is set per batch.
    fields = ("index", "dividend", "divisor", "expected", "parsed", "correct")
    assert [[x[f] for f in fields] for x in ddp_lines] == [[x[f] for f in fields] for x in one_lines]
    # The sample table holds the first problems overall, though each process evaluated only some of them.
    sample_fields = ("index", "question", "expected", "parsed", "correct")
    assert [x["index"] for x in ddp_samples] == [0, 1, 2]
    assert [[x[f] for f in sample_fields] for x in ddp_samples] == [[x[f] for f in sample_fields] for x in one_samples]
    assert (ddp_record["n_eval"], ddp_record["correct"], ddp_record["accuracy"]) == (
        one_record["n_eval"], one_record["correct"], one_record["accuracy"])
    assert ddp_record["metrics"]["test/remainder_acc"] == one_record["metrics"]["test/remainder_acc"]
    assert ddp_record["metrics"]["test/parse_fail_rate"] == one_record["metrics"]["test/parse_fail_rate"]
