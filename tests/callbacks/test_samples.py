"""The sample table: files in the run folder after validation and test, and a W&B table when W&B logs."""

import json
from types import SimpleNamespace
from unittest import mock

from lightning.pytorch.loggers import WandbLogger

from longdiv.callbacks.samples import COLUMNS, SampleTable
from longdiv.cli import main


def test_fit_writes_sample_tables(tmp_path):
    main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_epochs=1", "--data.num_demos=8", "--data.num_val=4",
          "--data.num_test=5", "--data.format=direct", "--num_samples=3", f"--runs_dir={tmp_path}"])
    (run,) = tmp_path.iterdir()
    predictions = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (run / "samples-test-epoch1.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (run / "samples-val-epoch0.jsonl").read_text().splitlines()]
    assert [r["index"] for r in test] == [r["index"] for r in val] == [0, 1, 2]
    assert test == [{c: p[c] for c in COLUMNS} for p in predictions[:3]]
    assert all(r["correct"] == (r["parsed"] == r["expected"]) for r in val)


def test_a_wandb_logger_gets_a_table(tmp_path):
    records = [{c: i for c in COLUMNS} | {"index": i} for i in (4, 1, 3, 2)]
    wandb = mock.create_autospec(WandbLogger, instance=True)
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, default_root_dir=str(tmp_path),
                              current_epoch=2, global_step=7, loggers=[wandb])
    SampleTable(num_samples=2).on_test_epoch_end(trainer, SimpleNamespace(records=records))
    wandb.log_table.assert_called_once_with(key="test/samples", columns=list(COLUMNS),
                                            data=[[1] * len(COLUMNS), [2] * len(COLUMNS)], step=7)
    assert len((tmp_path / "samples-test-epoch2.jsonl").read_text().splitlines()) == 2
