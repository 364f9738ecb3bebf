"""The learning curve a fit records: each epoch's training loss and its validation figures."""

import csv
import json
from types import SimpleNamespace

import pytest

from longdiv.callbacks.records import RunRecord
from longdiv.cli import main


def test_the_epoch_loss_undoes_lightnings_division_by_the_accumulation_count(tmp_path):
    trainer = SimpleNamespace(accumulate_grad_batches=4, current_epoch=0, global_step=3, is_global_zero=True,
                              default_root_dir=str(tmp_path))
    record = RunRecord()
    for loss in (2.0, 1.0, 3.0):  # what training_step returned; Lightning hands the callback a quarter of it
        record.on_train_batch_end(trainer, None, {"loss": loss / 4}, None, 0)
    record.on_train_epoch_end(trainer, None)
    trainer.current_epoch, trainer.global_step = 1, 4
    record.on_train_batch_end(trainer, None, {"loss": 0.5 / 4}, None, 0)
    record.on_train_epoch_end(trainer, None)
    assert [(e["epoch"], e["step"], e["train_loss"]) for e in record.history] == [(0, 3, 2.0), (1, 4, 0.5)]
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
    # the validation's accuracy is a count of the 3 problems it decoded
    assert history[1]["val/remainder_acc"] * 3 == pytest.approx(round(history[1]["val/remainder_acc"] * 3))
    # each epoch's loss is the one its step logged (Lightning's own CSV log)
    (log,) = (tmp_path / "csv").rglob("metrics.csv")
    logged = [float(row["train/loss"]) for row in csv.DictReader(log.open()) if row.get("train/loss")]
    assert [e["train_loss"] for e in history] == pytest.approx(logged, rel=1e-6) and len(set(logged)) == 3
    times = [e["fit_seconds"] for e in history]  # the fit's time up to each epoch's end (0.1 s steps)
    assert 0 <= times[0] <= times[1] <= times[2] <= record["fit_seconds"]
