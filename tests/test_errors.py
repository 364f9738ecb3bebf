"""Bad input comes out of every entry point as one line, `error: <what> (<where>): <problem>; <fix>`, with a non-zero
exit and no traceback (unless `--debug`); and a run says its folder when it ends. Every case fails before training."""

import subprocess
import sys

import pytest
import torch
import yaml

from longdiv import errors
from tests import cli_process

TINY = ["--config", "configs/tiny.yaml", "--data.num_demos=4", "--data.num_val=2", "--data.num_test=2",
        "--num_samples=0"]


def longdiv(*args: str) -> subprocess.CompletedProcess:
    return cli_process.run(*args)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line a failed command wrote to stderr (besides Lightning's note of the seed it set)."""
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("Seed set to")]
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_an_empty_checkpoint_is_named(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    ckpt.touch()
    line = error_line(longdiv("validate", *TINY, "--ckpt_path", str(ckpt), f"--runs_dir={tmp_path / 'runs'}"))
    assert line.startswith(f"error: checkpoint (--ckpt_path {ckpt}): the file is empty (0 bytes); pass a whole ")
    assert not (tmp_path / "runs").exists()


def test_a_truncated_checkpoint_is_named(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "hyper_parameters": {"model": "tiny"}}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # a copy cut short
    line = error_line(longdiv("fit", *TINY, "--ckpt_path", str(ckpt), f"--runs_dir={tmp_path / 'runs'}"))
    assert line.startswith(f"error: checkpoint (--ckpt_path {ckpt}): the file is truncated or damaged (")


def test_a_yaml_error_in_a_config_names_the_file(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("model:\n  lr: [1, 2\n")
    line = error_line(longdiv("fit", *TINY, "--config", str(bad), f"--runs_dir={tmp_path}"))
    assert line.startswith(f"error: config (--config {bad}): not valid YAML: ") and "line 3" in line


def test_an_unknown_hub_model_offline_is_named_with_the_names_that_work(tmp_path):
    line = error_line(longdiv("fit", *TINY, "--model.model", "nosuch/model", f"--runs_dir={tmp_path}"))
    assert line.startswith("error: model 'nosuch/model' (--model.model")
    assert "the hub is offline" in line and "'smollm2', 'gemma3-270m', 'tiny', 'scratch:<" in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args, message", [
    (["--data.format=grid"], "error: format 'grid' is unknown; choose one of: "),  # a ValueError from set-up
    (["--data.colour=red"], "error: command line (python -m longdiv fit): unrecognized arguments: --data.colour=red"),
])
def test_the_checks_before_training_come_out_as_one_line(args, message, tmp_path):
    assert error_line(longdiv("fit", *TINY, *args, f"--runs_dir={tmp_path}")).startswith(message)


def test_debug_shows_the_traceback(tmp_path):
    proc = longdiv("--debug", "fit", *TINY, "--data.format=grid", f"--runs_dir={tmp_path}")
    assert proc.returncode != 0 and "Traceback (most recent call last)" in proc.stderr
    assert "\nValueError: format 'grid' is unknown; choose one of: " in proc.stderr


def test_a_broken_sweep_yaml_is_named(tmp_path):
    sweep = tmp_path / "bad.yaml"
    sweep.write_text("method: grid\nparameters: {model.model: {values: [tiny\n")
    assert error_line(longdiv("sweep", str(sweep), "--dry_run")).startswith(
        f"error: sweep ({sweep}): not valid YAML: ")
    sweep.write_text(yaml.safe_dump({"method": "grid", "program": "longdiv", "command": ["${args}"]}))
    assert error_line(longdiv("sweep", str(sweep), "--dry_run")) == (
        f"error: sweep ({sweep}): the sweep has no `parameters` mapping; add one, each parameter with `values` "
        "or `value`")
    sweep.write_text(yaml.safe_dump({"method": "grid", "parameters": {"model.lr": {"values": [1e-3]}}}))
    assert error_line(longdiv("sweep", str(sweep), "--dry_run")) == (
        f"error: sweep ({sweep}): names no `program`; add `program: longdiv` (what wandb agent runs, as in "
        "configs/sweeps/demos.yaml)")


def test_a_value_error_once_the_loops_run_is_a_bug(monkeypatch):
    monkeypatch.setattr(errors, "_started", False)
    assert errors.is_user_error(ValueError("x")) and errors.is_user_error(FileNotFoundError("x"))
    assert not errors.is_user_error(RuntimeError("x")) and not errors.is_user_error(KeyError("x"))
    errors.work_started()
    assert not errors.is_user_error(ValueError("x"))
    assert errors.is_user_error(errors.UsageError("model 'x'", "--model.model", "unknown", "use another"))


@pytest.mark.parametrize("args", [["validate"], ["fit", "--trainer.max_steps=1", "--test_after_fit=false"]])
def test_a_run_says_its_folder_when_it_ends(args, tmp_path):
    proc = longdiv(*args, *TINY, f"--runs_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    (run,) = tmp_path.iterdir()
    assert proc.stdout.strip().splitlines()[-1] == f"run folder: {run}"


def test_ask_names_what_is_wrong_in_one_line(tmp_path):
    missing = tmp_path / "none.ckpt"
    line = error_line(longdiv("ask", "--ckpt_path", str(missing), "93", "59"))
    assert line == (f"error: checkpoint (--ckpt_path {missing}): no such file or folder; pass "
                    "runs/<run>/checkpoints/last.ckpt or an exported folder")
    assert error_line(longdiv("ask", "93", "59")).startswith("error: command line (python -m longdiv ask): ")


@pytest.mark.parametrize("command, args, message", [
    ("test", ["--data.test_file={tmp}/missing.txt"], "error: test_file '{tmp}/missing.txt' does not exist"),
    ("predict", ["--data.test_file=null"], "error: predict needs questions: pass --data.predict_file FILE"),
    ("fit", ["--model.lr=-1"], "error: model.lr is -1.0; pass a value >= 0"),
])
def test_test_predict_and_bad_settings_fail_in_one_line_and_leave_no_folder(command, args, message, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    line = error_line(longdiv(command, *TINY, *args, f"--runs_dir={tmp_path / 'runs'}"))
    assert line.startswith(message.replace("{tmp}", str(tmp_path)))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_report_fails_in_one_line(tmp_path):
    (tmp_path / "out").write_text("a file")
    (tmp_path / "runs").mkdir()
    line = error_line(longdiv("report", str(tmp_path / "nosuch"), "--out", str(tmp_path / "report")))
    assert line.startswith(f"error: run folder ({tmp_path / 'nosuch'}): no such folder")
    line = error_line(longdiv("report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")))
    assert line.startswith(f"error: report folder (--out {tmp_path / 'out'}): is a file")


def test_debug_keeps_the_commands_exit_status_and_a_bare_command_lists_them_all(tmp_path):
    assert longdiv("--debug", "fit", *TINY, "--data.format=grid", f"--runs_dir={tmp_path}").returncode == 2
    bare = longdiv()
    assert bare.returncode == 2
    assert all(f"\n  {name} " in bare.stderr for name in
               ("fit", "validate", "test", "predict", "report", "sweep", "export", "ask"))


def test_a_full_disk_mid_run_is_one_line_that_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    import errno

    from longdiv import __main__ as entry
    from longdiv.callbacks.checkpoint import AtomicCheckpointIO

    def full(self, checkpoint, path, storage_options=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", full)
    monkeypatch.setattr(sys, "argv", ["longdiv", "fit", *TINY, "--trainer.max_steps=1", "--trainer.logger=false",
                                      f"--runs_dir={tmp_path}"])
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].startswith(f"error: disk ({tmp_path}/")
    assert "No space left on device; free some space (--runs_dir or LONGDIV_RUNS for runs)" in lines[0]


def test_a_folder_given_as_checkpoint_is_one_line_that_names_the_file_to_pass(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    line = error_line(longdiv("test", *TINY, "--ckpt_path", str(run), f"--runs_dir={tmp_path / 'runs'}"))
    assert line == f"error: ckpt_path {run} is a folder; pass its checkpoint, {run / 'checkpoints' / 'last.ckpt'}"
    exported = tmp_path / "hf"
    exported.mkdir()
    line = error_line(longdiv("test", *TINY, "--ckpt_path", str(exported), f"--runs_dir={tmp_path / 'runs'}"))
    assert line.startswith(f"error: ckpt_path {exported} is a folder; pass a checkpoint file")
