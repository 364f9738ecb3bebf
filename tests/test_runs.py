"""Run folders and their records: exclusive creation, names that tell points apart, tested or not, round trips."""

import json
import os
from pathlib import Path

import pytest

from longdiv import runs

ROOT = Path(__file__).resolve().parent.parent


def test_two_runs_started_together_get_two_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda _: "20260101-120000")  # the same second for all three
    made = [runs.new_folder(tmp_path / "runs", "fit", "EleutherAI/gpt-neo-125m", "subrow", 200) for _ in range(3)]
    assert [p.name for p in made] == ["20260101-120000-fit-EleutherAI_gpt-neo-125m-subrow-n200",
                                      "20260101-120000-fit-EleutherAI_gpt-neo-125m-subrow-n200-2",
                                      "20260101-120000-fit-EleutherAI_gpt-neo-125m-subrow-n200-3"]
    assert all(p.is_dir() and not any(p.iterdir()) for p in made)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(p.name for p in made)


def test_a_folder_made_elsewhere_is_never_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda _: "20260101-120000")
    taken = tmp_path / "20260101-120000-test-tiny-direct-n8"
    taken.mkdir()
    (taken / "run.json").write_text("{}")
    assert runs.new_folder(tmp_path, "test", "tiny", "direct", 8) == tmp_path / f"{taken.name}-2"


def test_point_names_tell_every_parameter_apart():
    point = {"model.model": "scratch:smollm2-135m", "data.format": "subrow", "data.num_demos": 25, "seed_everything": 0}
    assert runs.point_name(point) == "scratch_smollm2-135m-subrow-n25-s0"
    assert runs.point_name(point | {"model.lr": 3e-4}) != runs.point_name(point | {"model.lr": 6e-4})
    assert runs.point_name(point | {"model.lr": 3e-4}) == "scratch_smollm2-135m-subrow-n25-s0-lr0.0003"
    # two keys with the same last part are named in full
    both = runs.point_name({"data.seed": 1, "model.seed": 2})
    assert both == "data.seed1-model.seed2" != runs.point_name({"data.seed": 2, "model.seed": 1})
    assert runs.point_name(point | {"config": "configs/recipes/lr6e-4.yaml"}).endswith("-s0-lr6e-4")
    # the order of the point's keys does not matter for the four named first
    assert runs.point_name(dict(reversed(point.items()))) == runs.point_name(point)


def test_tested_untested_and_corrupt_records(tmp_path):
    assert runs.read(tmp_path) is None and runs.tested(tmp_path) is None
    fit = {"stage": "fit", "model": "tiny", "format": "direct", "num_demos": 8}
    runs.write(tmp_path / "fit", fit)
    assert runs.read(tmp_path / "fit") == fit and runs.tested(tmp_path / "fit") is None
    test = fit | {"stage": "test", "accuracy": 0.5, "correct": 2, "n_eval": 4}
    runs.write(tmp_path / "deep" / "test", test)
    assert runs.tested(tmp_path / "deep" / "test") == test
    assert runs.find_tested([tmp_path]) == [tmp_path / "deep" / "test"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text('{"accuracy": 0.5')  # cut short
    with pytest.raises(ValueError, match=r"broken/run.json: not a run record"):
        runs.tested(tmp_path / "broken")
    (tmp_path / "broken" / "run.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"broken/run.json: not a run record \(it holds a list\)"):
        runs.read(tmp_path / "broken")
    with pytest.raises(ValueError, match="nosuch: no such folder"):
        runs.find_tested([tmp_path / "nosuch"])


def test_a_record_round_trips_and_the_file_is_the_same_json(tmp_path):
    record = {"stage": "test", "accuracy": 0.25, "metrics": {"test/remainder_acc": 0.25}, "git_commit": None,
              "config": {"data": {"num_demos": 8}}, "versions": {"torch": "2.13.0"}, "run_dir": str(tmp_path)}
    path = runs.write(tmp_path, record)
    assert path == tmp_path / "run.json" and runs.read(tmp_path) == record
    assert path.read_text() == json.dumps(record, indent=2)  # what older runs hold: committed reports still read
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_record(tmp_path):
    runs.write(tmp_path, {"stage": "fit"})
    loop = {"stage": "test"}
    loop["config"] = loop  # json cannot write it
    with pytest.raises(ValueError, match="Circular reference"):
        runs.write(tmp_path, loop)
    assert runs.read(tmp_path) == {"stage": "fit"} and [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_gather_outside_distributed_is_the_list_itself():
    items = [{"index": 1}]
    assert runs.gather(items) is items


def test_runs_go_under_longdiv_runs_when_it_is_set(tmp_path, monkeypatch):
    from longdiv.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "kept"))
    run = main(["fit", "--config", str(ROOT / "configs/tiny.yaml"), "--data.num_demos=4", "--data.num_test=2",
                "--data.train_file=null", "--data.val_file=null", "--trainer.max_steps=1", "--trainer.logger=false"])
    assert run.parent == tmp_path / "kept" and (run / "run.json").is_file() and not (tmp_path / "runs").exists()
    monkeypatch.delenv(runs.RUNS_ENV)
    assert runs.root() == Path("runs")


def _make_folders(args: tuple[Path, int]) -> list[str]:
    root, count = args
    return [str(runs.new_folder(root, "fit", "tiny", "direct", 8)) for _ in range(count)]


def test_processes_racing_for_one_name_each_get_their_own_folder(tmp_path, monkeypatch):
    import multiprocessing

    monkeypatch.setattr(runs.time, "strftime", lambda _: "20260101-120000")  # inherited by the forked workers
    with multiprocessing.get_context("fork").Pool(4) as pool:
        made = [path for part in pool.map(_make_folders, [(tmp_path, 25)] * 4) for path in part]
    assert len(made) == len(set(made)) == 100 == len(list(tmp_path.iterdir()))


def test_a_lock_that_the_file_system_cannot_take_leaves_the_run_unlocked(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(37, "No locks available")

    assert runs.hold(tmp_path / "not-yet") is None  # no folder: nothing to share yet
    fds = len(os.listdir("/proc/self/fd"))
    real_flock = runs.fcntl.flock
    monkeypatch.setattr(runs.fcntl, "flock", no_locks)
    assert runs.hold(tmp_path) is None
    assert len(os.listdir("/proc/self/fd")) == fds  # the descriptor it opened is closed again
    monkeypatch.setattr(runs.fcntl, "flock", real_flock)
    held = runs.hold(tmp_path)  # where locks work, the same folder is locked
    try:
        assert isinstance(held, int)
        with pytest.raises(ValueError, match="is in use"):
            runs.hold(tmp_path)  # another descriptor, as another process would have: refused
    finally:
        runs.release(held)
