"""W&B as its users run it: logged in through `wandb login` (a key in netrc) or started by `wandb agent`, a run
syncs; with no login it logs offline; an explicit WANDB_MODE wins. No test here sets WANDB_MODE for the run, and
none reaches the network: the CLI processes run with W&B's run start replaced (tests/wandb_stub)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import wandb
from wandb.sdk.lib.wbauth import write_netrc_auth

from longdiv.cli import wandb_offline

FAKE_KEY = "local-" + "0123456789abcdef" * 3  # the shape of a real key, so W&B takes it as one
STUB = Path(__file__).parent / "wandb_stub"
# What `wandb agent` adds to each run's environment (wandb_agent.py); it adds no key.
AGENT = {"WANDB_SWEEP_ID": "abc123", "WANDB_RUN_ID": "run456", "WANDB_SWEEP_PARAM_PATH": "wandb/sweep-abc123/c.yaml"}
RUN = ["fit", "--model.model=tiny", "--data.format=direct", "--data.train_file=null", "--data.val_file=null",
       "--data.num_demos=4", "--data.batch_size=4", "--data.num_val=2", "--data.num_test=2", "--trainer.max_steps=1",
       "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false", "--num_samples=0"]


def netrc(home: Path, machine: str | None) -> None:
    """A netrc in `home` with a fake key for `machine`, the way `wandb login` leaves one."""
    path = home / ".netrc"
    path.write_text(f"machine {machine}\n  login user\n  password {FAKE_KEY}\n" if machine else "")
    path.chmod(0o600)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user with no W&B settings in the environment and HOME in tmp_path."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "NETRC", *AGENT):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "machine, base_url, offline",
    [(None, None, True), ("github.com", None, True), ("api.wandb.ai", None, False),
     ("wandb.example.com", None, True), ("wandb.example.com", "https://wandb.example.com", False)],
)
def test_a_saved_login_for_the_wandb_server_syncs(machine, base_url, offline, home, monkeypatch):
    netrc(home, machine)
    if base_url:
        monkeypatch.setenv("WANDB_BASE_URL", base_url)
    assert wandb_offline() is offline


def test_the_login_that_this_wandb_writes_syncs(home):
    write_netrc_auth(host=wandb.Settings().base_url, api_key=FAKE_KEY)  # what `wandb login` does with the key
    assert (home / ".netrc").is_file() and wandb_offline() is False


def test_the_netrc_variable_names_the_login_file(home, monkeypatch):
    netrc(home, "api.wandb.ai")
    monkeypatch.setenv("NETRC", str(home / "elsewhere"))
    assert wandb_offline() is True


@pytest.mark.parametrize("login", [True, False])
def test_a_run_that_wandb_agent_started_syncs(login, home, monkeypatch):
    netrc(home, "api.wandb.ai" if login else None)
    for name, value in AGENT.items():
        monkeypatch.setenv(name, value)
    assert wandb_offline() is False


@pytest.mark.parametrize("mode, offline", [("offline", True), ("dryrun", True), ("disabled", False)])
def test_an_explicit_mode_wins_over_a_login(mode, offline, home, monkeypatch):
    netrc(home, "api.wandb.ai")
    for name, value in {**AGENT, "WANDB_MODE": mode}.items():
        monkeypatch.setenv(name, value)
    assert wandb_offline() is offline


def stub_env(home: Path, **extra: str) -> dict:
    """The environment of a CLI child: HOME in `home`, no W&B variables but `extra`, W&B's run start stubbed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    path = os.pathsep.join([str(STUB), os.getcwd(), env.get("PYTHONPATH", "")])
    return {**env, "HOME": str(home), "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def wandb_mode(command: list[str], env: dict) -> str:
    """The mode a CLI process starts W&B in, read from the stub's line."""
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("wandb.init", "connection attempted"))]
    assert proc.returncode == 0 and len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    return lines[0].removeprefix("wandb.init mode=")


@pytest.mark.parametrize("machine, mode", [("api.wandb.ai", "online"), (None, "dryrun")])
def test_the_cli_starts_wandb_online_only_for_a_logged_in_user(machine, mode, home):
    netrc(home, machine)
    command = [sys.executable, "-m", "longdiv", *RUN, f"--runs_dir={home / 'runs'}"]
    assert wandb_mode(command, stub_env(home)) == mode


def test_a_logged_in_run_that_cannot_reach_wandb_logs_offline_and_says_so(home):
    netrc(home, "api.wandb.ai")
    command = [sys.executable, "-m", "longdiv", *RUN, f"--runs_dir={home / 'runs'}"]
    env = stub_env(home, WANDB_STUB_UNREACHABLE="1")
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line for line in proc.stdout.splitlines() if line.startswith("wandb.init")] == ["wandb.init mode=dryrun"]
    (warning,) = [line for line in proc.stderr.splitlines() if line.startswith("warning: W&B could not start")]
    assert "timed out after 15.0 sec" in warning and "logging offline instead: `wandb sync " in warning
