"""The learning curve a fit records: each epoch's training loss and its validation figures."""

import csv
import json
from types import SimpleNamespace

import pytest
import torch

from longdiv.callbacks.records import RunRecord
from longdiv.cli import main


def test_the_epoch_loss_undoes_lightnings_division_by_the_accumulation_count(tmp_path):
    trainer = SimpleNamespace(accumulate_grad_batches=4, current_epoch=0, global_step=3, is_global_zero=True,
                              default_root_dir=str(tmp_path))
    record = RunRecord()
    batch = {"attention_mask": torch.tensor([[0, 1, 1], [1, 1, 1]])}  # 5 real tokens, 1 of padding
    for loss in (2.0, 1.0, 3.0):  # what training_step returned; Lightning hands the callback a quarter of it
        record.on_train_batch_end(trainer, None, {"loss": loss / 4}, batch, 0)
    record.on_train_epoch_end(trainer, None)
    trainer.current_epoch, trainer.global_step = 1, 4
    record.on_train_batch_end(trainer, None, {"loss": 0.5 / 4}, batch, 0)
    record.on_train_epoch_end(trainer, None)
    assert [(e["epoch"], e["step"], e["train_loss"], e["tokens"]) for e in record.history] == [
        (0, 3, 2.0, 15), (1, 4, 0.5, 20)]
    assert json.loads((tmp_path / "history.json").read_text()) == record.history


def test_a_fit_records_its_curve_with_validation_where_it_validated(tmp_path):
    # 4 demonstrations in one batch: one optimizer step an epoch, so an epoch's loss is that step's loss
    run = main(["fit", "--config", "configs/tiny.yaml", "--data.format=direct", "--data.num_demos=4",
                "--data.batch_size=4", "--data.val_file=null", "--data.num_val=3", "--data.num_test=2",
                "--trainer.max_epochs=3", "--trainer.check_val_every_n_epoch=2", "--trainer.log_every_n_steps=1",
                "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={tmp_path / 'csv'}",
                f"--runs_dir={tmp_path / 'runs'}"])
    record = json.loads((run / "run.json").read_text())
    history = record["history"]
    assert history == json.loads((run / "history.json").read_text())
    assert [(e["epoch"], e["step"]) for e in history] == [(0, 1), (1, 2), (2, 3)]
    assert [("val/remainder_acc" in e) for e in history] == [False, True, False]
    # the validation's accuracy is the share of its 3 decoded problems that its records count right
    (validated,) = (run / "validations").iterdir()
    assert validated.name == "step-000002.jsonl"
    rows = [json.loads(line) for line in validated.read_text().splitlines()]
    assert len(rows) == 3 and history[1]["val/remainder_acc"] == pytest.approx(sum(r["correct"] for r in rows) / 3)
    # each epoch's loss is the one its step logged (Lightning's own CSV log)
    (log,) = (tmp_path / "csv").rglob("metrics.csv")
    logged = [float(row["train/loss"]) for row in csv.DictReader(log.open()) if row.get("train/loss")]
    assert [e["train_loss"] for e in history] == pytest.approx(logged, rel=1e-6) and len(set(logged)) == 3
    times = [e["fit_seconds"] for e in history]  # the fit's time up to each epoch's end (0.1 s steps)
    assert 0 <= times[0] <= times[1] <= times[2] <= record["fit_seconds"]


def test_a_resumed_fit_records_the_highest_memory_of_every_process_that_trained_it(tmp_path, monkeypatch):
    from longdiv.callbacks import records

    trainer = SimpleNamespace(global_step=5, is_global_zero=True, default_root_dir=str(tmp_path), world_size=1,
                              strategy=SimpleNamespace(root_device="cpu"))
    first = RunRecord()
    monkeypatch.setattr(records, "peak_rss_gb", lambda: 9.5)  # the first process peaked at 9.5 GB
    first.on_fit_start(trainer, None)
    first.on_train_start(trainer, SimpleNamespace(machine=None))
    saved = first.state_dict()
    monkeypatch.setattr(records, "peak_rss_gb", lambda: 4.0)  # the process that resumes it, at 4 GB
    resumed = RunRecord()
    resumed.load_state_dict(saved)
    monkeypatch.setattr(resumed, "_write", lambda *args: None)
    resumed.on_fit_start(trainer, None)
    resumed.on_train_start(trainer, SimpleNamespace(machine=None))
    resumed.on_fit_end(trainer, None)
    assert resumed.record["fit_peak_rss_gb"] == 9.5
    assert [(seg["from_step"], seg["to_step"]) for seg in resumed.record["segments"]] == [(5, 5), (5, 5)]


@pytest.mark.parametrize("probe", ["decode", "forced"])
def test_each_validation_of_a_fit_keeps_its_problems_records(tmp_path, probe):
    from longdiv.data.formats import get_format
    from longdiv.data.problems import Problem

    run = main(["fit", "--config", "configs/tiny.yaml", "--data.format=subrow", "--data.num_demos=4",
                "--data.batch_size=4", "--data.val_file=null", "--data.num_val=3", "--data.num_test=2",
                "--trainer.max_epochs=2", "--trainer.check_val_every_n_epoch=1", f"--model.val_probe={probe}",
                "--trainer.logger=false", "--test_after_fit=false", f"--runs_dir={tmp_path}"])
    files = sorted((run / "validations").iterdir())
    assert [f.name for f in files] == ["step-000001.jsonl", "step-000002.jsonl"]
    for file, entry in zip(files, json.loads((run / "history.json").read_text()), strict=True):
        rows = [json.loads(line) for line in file.read_text().splitlines()]
        assert [r["index"] for r in rows] == [0, 1, 2]
        if probe == "decode":
            assert sum(r["correct"] for r in rows) == pytest.approx(3 * entry["val/remainder_acc"])
            continue
        assert sum(r["exact"] for r in rows) == pytest.approx(3 * entry["val/trace_exact"])
        assert not all(r["exact"] for r in rows)  # two steps from random weights: no whole trace
        for r in rows:  # a random model goes wrong somewhere inside the reference trace, which the record locates
            _, completion = get_format("subrow").render(Problem(r["dividend"], r["divisor"], r["question"]))
            assert r["exact"] == (r["first_wrong_char"] is None) == (r["instead"] is None)
            assert r["exact"] or 0 <= r["first_wrong_char"] <= len(completion)
            # what greedy decoding writes there is not what the reference goes on with
            assert r["exact"] or not completion[r["first_wrong_char"]:].startswith(r["instead"]) or r["instead"] == ""
            # every token greedy decoding would get wrong after a right prefix, the first of them first
            assert r["wrong_chars"] == sorted(set(r["wrong_chars"])) and len(r["wrong_chars"]) >= (not r["exact"])
            assert r["wrong_chars"][:1] == ([] if r["exact"] else [r["first_wrong_char"]])
            assert r["tokens"] - r["right"] >= 1 if r["wrong_chars"] else r["exact"]
