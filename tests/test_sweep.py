"""The W&B sweep in configs/sweeps/: its grid, one point run the way `wandb agent` runs it, and the local runner."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_wandb_login import AGENT, netrc, stub_env, wandb_mode

from longdiv import runs
from longdiv import sweep as local

SWEEP = Path("configs/sweeps/demos.yaml")
# Swaps the sweep's model for the tiny random-init one and shrinks the run; a real sweep needs none of this.
TINY = ["--model.model=tiny", "--data.num_test=3", "--data.eval_batch_size=3", "--trainer.max_epochs=1",
        "--num_samples=0"]


def agent_command(config: dict, point: dict) -> list[str]:
    """What `wandb agent` runs for one point (wandb_agent.py): `${env}` is /usr/bin/env, `${program}` the sweep's
    program, `${args}` one `--key=value` per parameter; other entries are kept as written."""
    macros = {"${env}": ["/usr/bin/env"], "${program}": [config["program"]],
              "${args}": [f"--{key}={value}" for key, value in point.items()]}
    return [x for part in config["command"] for x in macros.get(part, [part])]


def test_the_sweep_is_the_demos_grid():
    config = yaml.safe_load(SWEEP.read_text())
    assert config["method"] == "grid" and config["program"] == "longdiv" and "name" not in config
    assert config["metric"] == {"name": "test/remainder_acc", "goal": "maximize"}
    params = config["parameters"]
    assert params["data.num_demos"]["values"] == [25, 50, 100, 200, 400, 800]
    assert {"subrow", "direct"} <= set(params["data.format"]["values"])
    assert len(params["seed_everything"]["values"]) == 2 and "smollm2" in params["model.model"]["values"]
    assert config["command"][:4] == ["${env}", "python", "-m", "${program}"] and config["command"][-1] == "${args}"
    assert config["command"][4:9] == ["fit", "--config", "configs/smollm2.yaml",
                                      "--config", "configs/overlays/fixed-steps.yaml"]
    points = local.grid(config)
    assert len(points) == 6 * 2 * 2 * len(params["model.model"]["values"])
    assert len({tuple(p.items()) for p in points}) == len(points)
    # the local runner renders exactly what the agent does
    assert local.agent_command(config, points[5]) == agent_command(config, points[5])


def test_args_render_as_wandb_renders_them():
    utils = pytest.importorskip("wandb.sdk.launch.sweeps.utils")
    point = {"model.model": "scratch:smollm2-135m", "data.num_demos": 25, "seed_everything": 1}
    assert local.agent_args(point) == utils.create_sweep_command_args(
        {"args": {k: {"value": v} for k, v in point.items()}})["args"]


def test_one_point_runs_like_the_wandb_agent(tmp_path):
    config = yaml.safe_load(SWEEP.read_text())
    point = {"model.model": "smollm2", "data.format": "direct", "data.num_demos": 25, "seed_everything": 1}
    assert point in local.grid(config)
    command = agent_command(config, point) + TINY + [f"--runs_dir={tmp_path}"]
    # Offline by hand so the whole run fits in a test; the next test shows what the agent's environment decides.
    env = dict(os.environ, WANDB_MODE="offline", HF_HUB_OFFLINE="1", WANDB_DIR=str(tmp_path),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # `python` is the venv's
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if (p / "run.json").is_file()]
    record = json.loads((run / "run.json").read_text())
    assert record["num_demos"] == 25 and record["config"]["seed_everything"] == 1 and record["format"] == "direct"
    assert record["n_eval"] == 3 and record["config"]["data"].get("train_file") is None


def test_a_point_that_wandb_agent_starts_syncs_with_the_users_login(tmp_path):
    """The agent gives each run its sweep variables and no key, and the user logged in with `wandb login`: W&B must
    start online, or the sweep never gets its metric. W&B's run start is stubbed, so nothing connects."""
    config = yaml.safe_load(SWEEP.read_text())
    point = {"model.model": "smollm2", "data.format": "direct", "data.num_demos": 25, "seed_everything": 1}
    netrc(tmp_path, "api.wandb.ai")
    command = agent_command(config, point) + TINY + [f"--runs_dir={tmp_path / 'runs'}"]
    env = stub_env(tmp_path, **AGENT, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert wandb_mode(command, env) == "online"


def test_local_runner_filters_and_skips_finished_points(tmp_path, capsys):
    done = tmp_path / runs.point_name({"model.model": "smollm2", "data.format": "subrow", "data.num_demos": 25,
                                       "seed_everything": 0})
    done.mkdir()
    (done / "run.json").write_text(json.dumps({"accuracy": 0.5}))
    damaged = tmp_path / "smollm2-subrow-n50-s0"
    damaged.mkdir()
    (damaged / "run.json").write_text('{"accuracy": 0.')
    args = [str(SWEEP), "--num_demos", "25", "50", "--models", "smollm2", "--formats", "subrow", "--seeds", "0",
            "--runs_dir", str(tmp_path), "--dry_run", "--", "--trainer.max_epochs=1"]
    assert local.main(args) == 0
    out = capsys.readouterr().out
    assert "[1/2] smollm2-subrow-n25-s0: done, skipped" in out and "[2/2] smollm2-subrow-n50-s0: dry run" in out
    assert f"{damaged / 'run.json'}: not a run record" in out  # said, then run over
    assert f"--trainer.default_root_dir={tmp_path / 'smollm2-subrow-n50-s0'}" in out and "--trainer.max_epochs=1" in out
    with pytest.raises(ValueError, match="--models smollm: not among the sweep's model.model values"):
        local.main([str(SWEEP), "--models", "smollm", "--dry_run"])


def test_points_that_differ_only_in_lr_get_their_own_folders(tmp_path, capsys):
    grid = {"program": "longdiv", "method": "grid",
            "command": ["${env}", "python", "-m", "${program}", "fit", "${args}"],
            "parameters": {"model.model": {"value": "tiny"}, "model.lr": {"values": [1e-4, 2e-4]}}}
    path = tmp_path / "lr.yaml"
    path.write_text(yaml.safe_dump(grid))
    assert local.main([str(path), "--runs_dir", str(tmp_path / "runs"), "--dry_run"]) == 0
    folders = [line.split("--trainer.default_root_dir=")[1].split()[0] for line in capsys.readouterr().out.splitlines()
               if "--trainer.default_root_dir=" in line]
    assert len(folders) == len(set(folders)) == 2
