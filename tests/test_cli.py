"""The command line as a user types it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from longdiv.cli import main

CONFIGS = sorted(str(p) for p in Path("configs").glob("*.yaml") if p.name != "bf16.yaml")
# Each config's own model, swapped for a random-init one of the same class at toy width so no hub is needed.
TINY_NEO = '{"hidden_size": 32, "num_layers": 2, "num_heads": 2, "attention_types": [[["global", "local"], 1]]}'
TINY = [
    "--data.num_demos=4", "--data.num_test=3", "--data.num_val=2", "--data.val_file=null", "--data.test_file=null",
    "--trainer.logger=false", "--trainer.accelerator=cpu", "--trainer.precision=32-true",
]


def model_override(config: str) -> list[str]:
    text = Path(config).read_text()
    if "gpt-neo" in text:
        arch = "gpt-neo-" + text.split("gpt-neo-")[1].split()[0]
        return [f"--model.model=scratch:{arch}", "--model.tokenizer=char", f"--model.config_overrides={TINY_NEO}"]
    return ["--model.model=tiny"]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_runs_fast_dev_run(config, tmp_path):
    main(["fit", "--config", config, *TINY, *model_override(config), "--trainer.fast_dev_run=true",
          f"--runs_dir={tmp_path}"])


def test_neo125m_config_names_the_hub_model():
    out = subprocess.run([sys.executable, "-m", "longdiv", "fit", "--config", "configs/neo125m.yaml", "--print_config"],
                         capture_output=True, text=True, check=True).stdout
    assert "model: EleutherAI/gpt-neo-125m" in out and "format: sub" in out


def test_fit_then_test_writes_the_run_folder(tmp_path, capsys):
    main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_epochs=1", "--data.num_demos=8", "--data.num_test=5",
          "--data.format=direct",
          f"--runs_dir={tmp_path}"])
    (run,) = tmp_path.iterdir()
    record = json.loads((run / "run.json").read_text())
    lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert record["n_eval"] == len(lines) == 5 and record["num_demos"] == 8
    assert record["correct"] == sum(x["correct"] for x in lines)
    assert {"question", "dividend", "divisor", "expected", "generated", "parsed", "correct"} <= set(lines[0])
    assert all(x["expected"] == x["dividend"] % x["divisor"] for x in lines)
    assert (run / "checkpoints" / "last.ckpt").is_file() and record["data_hash"]
    out = capsys.readouterr().out
    assert "test accuracy" in out and f"run folder: {run}" in out

    # `test --ckpt_path ... --data.test_file F` evaluates any file with the fitted weights
    problems = tmp_path / "mine.txt"
    problems.write_text("What is the remainder when 1234 is divided by 7?|2\nCalculate the remainder when 99 is divided by 10.|9\n")
    main(["test", "--config", "configs/tiny.yaml", "--data.format=direct", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
          f"--data.test_file={problems}", f"--runs_dir={tmp_path}"])
    (tested,) = set(tmp_path.iterdir()) - {run, problems}
    lines = [json.loads(x) for x in (tested / "predictions.jsonl").read_text().splitlines()]
    assert [(x["dividend"], x["divisor"], x["expected"]) for x in lines] == [(1234, 7, 2), (99, 10, 9)]
    assert "/2), 95% interval" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data.format=grid"], "format 'grid' is unknown; choose one of"),
        (["--model.model=nosuchmodel"], "model 'nosuchmodel' is unknown; use 'smollm2', 'tiny'"),
        (["--data.colour=red"], "colour"),
    ],
)
def test_bad_input_fails_before_training(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "longdiv", "fit", "--config", "configs/tiny.yaml", *args, f"--runs_dir={tmp_path}"],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0 and message in proc.stderr
    assert "Epoch" not in proc.stdout + proc.stderr
