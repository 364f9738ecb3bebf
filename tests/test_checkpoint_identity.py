"""A checkpoint is read for what it is: options typed next to it win over its saved settings, testing it removes
its own training problems and keeps its format, and resuming it refuses another experiment (--init_from starts
one from its weights)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from longdiv.cli import main
from longdiv.data.problems import Problem, generate
from tests import cli_process

# Eight generator problems in format direct, two optimizer steps: the checkpoint every test here reads.
FIT = [
    "--config", "configs/tiny.yaml", "--data.format=direct", "--data.num_demos=8", "--data.batch_size=4",
    "--data.num_val=2", "--data.num_test=3", "--data.data_seed=0", "--model.temperature=0.5",
    "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--test_after_fit=false", "--num_samples=0",
]
# What an evaluation of it adds to the user's config: tiny.yaml with few problems.
EVAL = ["--config", "configs/tiny.yaml", "--data.num_val=2", "--data.num_test=3", "--num_samples=0",
        "--trainer.enable_progress_bar=false"]


def record_of(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def predictions(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """The checkpoint of a two-step fit; tests copy its run folder before writing into it."""
    run = main(["fit", *FIT, f"--runs_dir={tmp_path_factory.mktemp('fitted')}"])
    return run / "checkpoints" / "last.ckpt"


def cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m longdiv ...` as a user runs it."""
    return cli_process.run(*args)


def test_options_typed_next_to_a_checkpoint_win_over_its_saved_ones(fitted, tmp_path):
    done = cli("test", *EVAL, "--ckpt_path", str(fitted), "--model.votes=3", "--model.precision=auto",
               f"--runs_dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = tmp_path.iterdir()
    record = record_of(run)
    model = record["config"]["model"]
    assert model["votes"] == 3 and record["precision"]["setting"] == "auto"  # typed: they win
    assert model["temperature"] == 0.5  # not typed: the checkpoint's
    assert all(len(x["votes"]) == 3 for x in predictions(run))  # three sampled traces a problem, not one greedy
    changed = record["checkpoint"]["changed"]
    assert changed["model.votes"] == {"checkpoint": 1, "used": 3}
    assert changed["model.precision"] == {"checkpoint": "fp32", "used": "auto"}
    assert "model.temperature" not in changed


def test_testing_a_checkpoint_removes_its_training_problems_from_any_eval_set(fitted, tmp_path):
    trained = generate("train", 8, 0)  # the fit's training problems: its generator draw
    others = [Problem.from_numbers(1234, 7), Problem.from_numbers(99, 10)]
    problems = tmp_path / "problems.txt"
    problems.write_text("".join(f"{p.question}|{p.remainder}\n" for p in [*trained, *others]))
    # Another data seed: the data settings now draw other training problems, but the weights saw these.
    run = main(["test", *EVAL, "--ckpt_path", str(fitted), f"--data.test_file={problems}", "--data.data_seed=1",
                f"--runs_dir={tmp_path / 'runs'}"])
    record = record_of(run)
    assert sorted((x["dividend"], x["divisor"]) for x in predictions(run)) == [(99, 10), (1234, 7)]
    assert record["removed_overlap"] == 8 and record["n_eval"] == 2
    assert record["checkpoint"]["num_demos"] == record["num_demos"] == 8  # the weights' N, not tiny.yaml's 32
    assert record["checkpoint"]["data_seed"] == 0 and record["data_seed"] == 1


def test_a_checkpoint_is_evaluated_in_its_own_format_unless_asked_otherwise(fitted, tmp_path):
    record = record_of(main(["test", *EVAL, "--ckpt_path", str(fitted), f"--runs_dir={tmp_path / 'own'}"]))
    assert record["format"] == "direct" and record["checkpoint"]["format"] == "direct"
    assert "-direct-n8" in Path(record["run_dir"]).name

    refusal = r"was trained on format direct, not subrow; drop --data.format .* add --allow_format_change true"
    with pytest.raises(ValueError, match=refusal):
        main(["test", *EVAL, "--ckpt_path", str(fitted), "--data.format=subrow", f"--runs_dir={tmp_path / 'no'}"])
    assert not (tmp_path / "no").exists()

    with pytest.warns(UserWarning, match="EVALUATING IN ANOTHER FORMAT: .* trained on format direct"):
        run = main(["test", *EVAL, "--ckpt_path", str(fitted), "--data.format=subrow", "--allow_format_change=true",
                    f"--runs_dir={tmp_path / 'asked'}"])
    record = record_of(run)
    assert record["format"] == "subrow" and record["checkpoint"]["format"] == "direct"
    assert record["checkpoint"]["changed"]["data.format"] == {"checkpoint": "direct", "used": "subrow"}


def test_resuming_refuses_another_experiment(fitted, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fitted.parent.parent, run)
    ckpt = run / "checkpoints" / "last.ckpt"
    before = ckpt.read_bytes()
    refused = cli("fit", *FIT, "--ckpt_path", str(ckpt), "--data.num_demos=16", "--data.format=subrow",
                  "--model.lr=1e-3", f"--runs_dir={tmp_path / 'runs'}")
    assert refused.returncode == 2
    (message,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in refused.stderr
    assert "data.num_demos is 16 here and 8 in the checkpoint" in message
    assert "data.format is 'subrow' here and 'direct' in the checkpoint" in message
    assert "model.lr is 0.001 here and 0.0003 in the checkpoint" in message
    assert f"--init_from {ckpt} instead of --ckpt_path" in message
    assert ckpt.read_bytes() == before and not (tmp_path / "runs").exists()


def test_ckpt_path_last_is_the_run_folders_checkpoint_checked_as_if_named_or_a_fresh_start(tmp_path):
    """`--ckpt_path last --trainer.default_root_dir RUN`: one command that starts a run and later resumes it."""
    run = tmp_path / "run"
    args = ["fit", *FIT, "--ckpt_path", "last", f"--trainer.default_root_dir={run}", "--model.schedule=constant"]
    with pytest.warns(UserWarning, match=f"no checkpoint at {run / 'checkpoints' / 'last.ckpt'} yet; the run starts"):
        assert main(args) == run
    ckpt = run / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 2 and "checkpoint" not in record_of(run)
    # another experiment is refused as it is when the checkpoint is named
    with pytest.raises(ValueError, match=rf"fit --ckpt_path {ckpt} resumes its run, but model.lr is 0.001 here"):
        main([*args, "--model.lr=1e-3"])
    resumed = main([*args, "--trainer.max_epochs=2"])  # a constant schedule: the run may go on for longer
    record = record_of(resumed)
    assert resumed == run and record["checkpoint"]["path"] == str(ckpt) and record["checkpoint"]["use"] == "resumed"
    assert [(seg["from_step"], seg["to_step"]) for seg in record["segments"]] == [(0, 2), (2, 4)]
    # an evaluation by `last` would write into the fit's folder (or test untrained weights): it names its checkpoint
    with pytest.raises(ValueError, match=r"ckpt_path 'last' resumes a fit; pass the checkpoint to test by its path"):
        main(["test", *EVAL, "--ckpt_path", "last", f"--trainer.default_root_dir={run}"])


def test_a_run_begun_with_init_from_resumes_by_the_command_its_interruption_prints(fitted, tmp_path):
    from longdiv.callbacks.records import RunRecord

    args = ["fit", *FIT, "--init_from", str(fitted), "--model.schedule=constant", f"--runs_dir={tmp_path}"]
    run = main(args)
    config, ckpt = run / "config.yaml", run / "checkpoints" / "last.ckpt"
    # its config.yaml names the checkpoint it began from, which --ckpt_path may not be given with
    with pytest.raises(ValueError, match="init_from .* it starts a new fit from a checkpoint's weights"):
        main(["fit", "--config", str(config), "--ckpt_path", str(ckpt)])
    command = RunRecord(config=record_of(run)["config"])._resume(run).split()  # what Ctrl-C and the test hint say
    assert command[:3] == ["python", "-m", "longdiv"] and command[-2:] == ["--init_from", "null"]
    assert RunRecord(config={"init_from": None})._resume(run).endswith(str(ckpt))
    resumed = main([*command[3:], "--trainer.max_epochs=2"])
    segments = record_of(resumed)["segments"]
    assert resumed == run and [(s["from_step"], s["to_step"]) for s in segments] == [(0, 2), (2, 4)]


def test_resuming_refuses_data_that_changed_under_the_same_settings(tmp_path):
    """The settings match but the training file's problems differ: the data hash saved in the checkpoint catches it."""
    train = tmp_path / "train.txt"
    train.write_text("".join(f"{p.question}|{p.remainder}\n" for p in generate("train", 4, 0)))
    args = ["fit", *FIT, f"--data.train_file={train}", "--data.num_demos=4", f"--runs_dir={tmp_path / 'runs'}",
            "--trainer.max_steps=1"]
    ckpt = main(args) / "checkpoints" / "last.ckpt"
    train.write_text("".join(f"{p.question}|{p.remainder}\n" for p in generate("train", 4, 1)))
    with pytest.raises(ValueError, match="the checkpoint was trained on data with hash .* --init_from"):
        main([*args, "--ckpt_path", str(ckpt)])


def test_init_from_starts_a_new_run_from_the_weights_only(fitted, tmp_path):
    # lr 0: the one step taken leaves the weights as they were loaded.
    run = main(["fit", *FIT, "--init_from", str(fitted), "--data.format=subrow", "--model.lr=0",
                "--trainer.max_steps=1", f"--runs_dir={tmp_path}"])
    assert run.parent == tmp_path and run != fitted.parent.parent
    new, old = (torch.load(p, weights_only=True, map_location="cpu")
                for p in (run / "checkpoints" / "last.ckpt", fitted))
    assert new["global_step"] == 1 and old["global_step"] == 2  # a fresh count, not the checkpoint's
    assert new["optimizer_states"][0]["state"][0]["step"].item() == 1  # a fresh optimizer
    assert all(torch.equal(new["state_dict"][k], old["state_dict"][k]) for k in old["state_dict"])
    record = record_of(run)
    assert record["format"] == "subrow" and record["checkpoint"]["use"] == "initialized"

    with pytest.raises(ValueError, match="pass it to fit without --ckpt_path"):
        main(["test", *EVAL, "--init_from", str(fitted), f"--runs_dir={tmp_path / 'test'}"])


def test_resuming_refuses_a_checkpoint_of_another_run_folder(fitted, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(fitted.parent.parent, other)
    before = sorted(p.name for p in other.iterdir())
    refused = cli("fit", *FIT, "--ckpt_path", str(fitted), f"--trainer.default_root_dir={other}")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    (message,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert f"is a checkpoint of the run in {fitted.parent.parent}, not of trainer.default_root_dir {other}" in message
    assert sorted(p.name for p in other.iterdir()) == before


def test_a_runs_directory_where_no_folder_can_be_made_is_one_line(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    refused = cli("fit", *FIT, f"--runs_dir={blocked / 'runs'}")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    (message,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert f"runs_dir {blocked / 'runs'}: a run folder cannot be created there" in message
    assert "--runs_dir or LONGDIV_RUNS" in message


def test_resuming_compares_the_training_settings_and_extends_only_a_constant_schedule(fitted, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fitted.parent.parent, run)
    ckpt = run / "checkpoints" / "last.ckpt"
    refused = cli("fit", *FIT, "--ckpt_path", str(ckpt), "--seed_everything=7", "--trainer.accumulate_grad_batches=2",
                  "--trainer.max_epochs=3")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    (message,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert "seed_everything is 7 here and 0 in the checkpoint" in message
    assert "trainer.accumulate_grad_batches is 2 here and 1 in the checkpoint" in message
    # a cosine schedule decays to 0 at the run's last step: a longer run would change its learning rates
    assert "trainer.max_epochs is 3 here and 1 in the checkpoint" in message

    tested = ["--model.schedule=constant", "--test_after_fit=true"]
    first = main(["fit", *FIT, *tested, f"--runs_dir={tmp_path / 'runs'}"])  # 2 steps, then a test
    extended = main(["fit", *FIT, *tested, "--trainer.max_epochs=2",
                     "--ckpt_path", str(first / "checkpoints" / "last.ckpt")])
    record = record_of(extended)
    assert extended == first and record["checkpoint"]["changed"] == {
        "extended: trainer.max_epochs": {"checkpoint": 1, "used": 2}}
    assert torch.load(first / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    assert [(seg["from_step"], seg["to_step"]) for seg in record["segments"]] == [(0, 2), (2, 4)]
    # the first model's test stays, named by the step its weights were at; the new weights got their own
    assert (first / "predictions-before-step2.jsonl").is_file() and (first / "predictions.jsonl").is_file()
    assert record["stage"] == "test"


def test_a_checkpoint_whose_settings_ask_for_another_architecture_is_refused_before_it_is_built(fitted, tmp_path):
    ckpt = torch.load(fitted, weights_only=True, map_location="cpu")
    ckpt["hyper_parameters"]["config_overrides"] = {"hidden_size": 200_000}  # about 40 GB of weights
    edited = tmp_path / "edited.ckpt"
    torch.save(ckpt, edited)
    for command in (["test", *EVAL], ["ask"]):
        refused = cli(*command, "--ckpt_path", str(edited), *(["123", "7"] if command == ["ask"] else []))
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
        (message,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
        assert (f"ckpt_path {edited}: its settings ask for a tiny of" in message
                and "the checkpoint was damaged" in message)


def test_an_evaluated_checkpoint_brings_its_own_training_problems_not_the_configs(fitted, tmp_path):
    # The checkpoint trained on the generator's first 8 problems (data seed 0); a config of 32 draws 24 more.
    others = generate("train", 32, 0)[8:]
    assert not {p.key for p in others} & {p.key for p in generate("train", 8, 0)}
    problems = tmp_path / "problems.txt"
    problems.write_text("".join(f"{p.question}|{p.remainder}\n" for p in others))
    run = main(["test", *EVAL, "--data.format=direct", "--data.num_demos=32", "--data.train_file=null",
                "--ckpt_path", str(fitted), f"--data.test_file={problems}", f"--runs_dir={tmp_path / 'runs'}"])
    record, trained = record_of(run), record_of(fitted.parent.parent)
    assert record["removed_overlap"] == 0 and record["n_eval"] == 24  # none of them is the checkpoint's
    assert record["num_demos"] == 8 and record["data_hash"] == trained["data_hash"]
    assert record["train_windows"] is None and record["config"]["data"]["num_demos"] == 8
    assert "data.num_demos" not in record["checkpoint"]["changed"]
    assert "num_demos: 8" in (run / "config.yaml").read_text()


def test_the_format_is_stored_once_and_lightning_loads_it(fitted):
    ckpt = torch.load(fitted, weights_only=True, map_location="cpu")
    assert ckpt["hyper_parameters"]["format"] == "direct"  # with the model's settings ...
    assert "format" not in ckpt["datamodule_hyper_parameters"]  # ... and nowhere else
    assert "format" not in ckpt["DivisionData"]["identity"]
    run = next(state for key, state in ckpt["callbacks"].items() if key.startswith("RunRecord"))
    assert "model" not in run["config"] and "data" not in run["config"] and "seed_everything" in run["config"]
    from longdiv import identity
    from longdiv.models.module import DivisionLM

    found = identity.read(fitted)
    assert found["saved"]["data"]["format"] == "direct" and found["identity"]["format"] == "direct"
    # Lightning's own loader and longdiv's give the format trained on (not DivisionLM's default, subrow)
    assert DivisionLM.load_from_checkpoint(fitted, map_location="cpu", weights_only=True).format.name == "direct"
    module, _ = identity.load(fitted)
    assert module.format.name == "direct"
    assert torch.equal(module.state_dict()["model.lm_head.weight"], ckpt["state_dict"]["model.lm_head.weight"])


def test_a_checkpoint_from_before_the_format_was_stored_once_is_read_the_same(fitted, tmp_path):
    from longdiv import identity

    old = torch.load(fitted, weights_only=True, map_location="cpu")
    old["datamodule_hyper_parameters"]["format"] = "direct"  # as earlier longdiv wrote it: three times
    old["DivisionData"]["identity"]["format"] = "direct"
    run_state = next(key for key in old["callbacks"] if key.startswith("RunRecord"))
    old["callbacks"][run_state]["config"] |= {"model": {"model": "tiny"}, "data": {"format": "direct"}}
    path = tmp_path / "old.ckpt"
    torch.save(old, path)
    found = identity.read(path)
    assert found["saved"]["data"]["format"] == "direct" and "format" not in found["saved"]["model"]
    assert identity.load(path)[0].format.name == "direct"
    run = main(["test", *EVAL, "--ckpt_path", str(path), f"--runs_dir={tmp_path / 'runs'}"])
    record = record_of(run)
    assert record["format"] == "direct" and record["checkpoint"]["changed"] == {}


def test_a_checkpoint_with_a_retired_setting_no_settings_or_a_file_not_here_is_still_read(fitted, tmp_path):
    from longdiv import identity

    ckpt = torch.load(fitted, weights_only=True, map_location="cpu")
    retired = ckpt | {"hyper_parameters": ckpt["hyper_parameters"] | {"retired_setting": 1}}
    torch.save(retired, tmp_path / "retired.ckpt")
    with pytest.warns(UserWarning, match="no longer options, ignored: retired_setting"):
        module, _ = identity.load(tmp_path / "retired.ckpt")
    assert module.format.name == "direct"
    bare = {k: v for k, v in ckpt.items() if k not in ("hyper_parameters", "datamodule_hyper_parameters")}
    torch.save(bare, tmp_path / "bare.ckpt")  # no saved settings: the config's (tiny.yaml) are used
    assert "format" not in identity.read(tmp_path / "bare.ckpt")["saved"]["data"]
    run = main(["test", *EVAL, "--ckpt_path", str(tmp_path / "bare.ckpt"), f"--runs_dir={tmp_path / 'bare'}"])
    assert record_of(run)["format"] == "subrow"
    elsewhere = ckpt | {"datamodule_hyper_parameters": ckpt["datamodule_hyper_parameters"]
                        | {"self_traces": str(tmp_path / "gone" / "traces.jsonl")}}
    torch.save(elsewhere, tmp_path / "elsewhere.ckpt")  # trained on traces in a folder not on this machine
    with pytest.warns(UserWarning, match="data.self_traces .* is not here"):
        run = main(["test", *EVAL, "--ckpt_path", str(tmp_path / "elsewhere.ckpt"),
                    f"--runs_dir={tmp_path / 'elsewhere'}"])
    record = record_of(run)
    assert record["format"] == "direct" and record["num_demos"] == 8
    assert record["checkpoint"]["changed"]["data.self_traces"]["used"] is None


# Another process running in a folder: it holds the lock `longdiv.runs.hold` takes, until its standard input closes.
HOLDER = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); "
          "print('held', flush=True); sys.stdin.read()")


def test_a_run_folder_that_another_process_runs_in_is_refused_in_one_line(fitted, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fitted.parent.parent, run)
    ckpt = run / "checkpoints" / "last.ckpt"
    before = ckpt.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        for command in (["fit", *FIT, "--ckpt_path", str(ckpt)],  # a resume, as a restarted job would start it
                        ["test", *EVAL, "--ckpt_path", str(ckpt), f"--trainer.default_root_dir={run}"]):
            refused = cli(*command)
            assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
            (message,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
            assert message.startswith(f"error: run folder {run} is in use: another process is running in it")
        assert ckpt.read_bytes() == before and sorted(p.name for p in run.iterdir()) == sorted(
            p.name for p in fitted.parent.parent.iterdir())  # nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    resumed = cli("fit", *FIT, "--ckpt_path", str(ckpt))  # the folder is free once that process has ended
    assert resumed.returncode == 0, resumed.stderr[-2000:]
