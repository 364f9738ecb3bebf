"""`python -m longdiv report`: tables that equal the run records, and the plots."""

import csv
import json
import random
from pathlib import Path

import pytest

from longdiv.cli import main
from longdiv.data.verify import KINDS
from longdiv.report import main as report_main
from longdiv.stats import wilson
from tests import cli_process

PLOTS = ("accuracy.png", "parse_fail.png", "error_kinds.png", "length_heatmap.png")


def fake_run(folder, model, fmt, num_demos, seed, correct, n, parse_failures, errors):
    """A run folder as RunRecord writes it after a test: run.json and predictions.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    low, high = wilson(correct, n)
    record = {
        "stage": "test", "format": fmt, "num_demos": num_demos, "data_seed": 0, "data_hash": "abc", "model": model,
        "accuracy": correct / n, "correct": correct, "n_eval": n, "wilson_low": low, "wilson_high": high,
        "parse_failures": parse_failures, "metrics": {f"test/err_{k}": float(v) for k, v in errors.items()},
        "config": {"seed_everything": seed, "data": {"eval_split": "interpolate", "test_file": None, "batch_size": 8,
                                                     "num_demos": num_demos},
                   "trainer": {"max_steps": 150, "max_epochs": -1, "accumulate_grad_batches": 1,
                               "precision": "32-true"}},
        "run_dir": str(folder),
    }
    (folder / "run.json").write_text(json.dumps(record))
    rng = random.Random(seed)
    with (folder / "predictions.jsonl").open("w") as f:
        for i in range(n):
            dividend, divisor = rng.randrange(10, 10**7), rng.randrange(2, 10**3)
            f.write(json.dumps({"index": i, "dividend": dividend, "divisor": divisor, "correct": i < correct}) + "\n")
    return record


def test_tables_equal_the_records_and_plots_exist(tmp_path):
    records = []
    for model in ("smollm2", "scratch:smollm2-135m"):
        for fmt in ("sub", "direct"):
            for num_demos in (25, 200):
                for seed in (0, 1):
                    correct = (num_demos // 25 + seed * 3 + len(fmt)) % 20
                    errors = dict.fromkeys(KINDS, 0) | {"subtraction": 20 - correct - 1, "malformed": 1}
                    records.append(fake_run(tmp_path / "runs" / f"{model}-{fmt}-{num_demos}-{seed}".replace(":", "_"),
                                            model, fmt, num_demos, seed, correct, 20, seed, errors))
    (tmp_path / "runs" / "unfinished").mkdir()
    (tmp_path / "runs" / "unfinished" / "run.json").write_text(json.dumps({"stage": "fit", "model": "x"}))

    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0

    rows = list(csv.DictReader((tmp_path / "report" / "table.csv").open()))
    assert len(rows) == len(records)  # the unfinished run is left out
    by_dir = {r["run_dir"]: r for r in rows}
    for record in records:
        r = by_dir[record["run_dir"]]
        assert (r["model"], r["format"], int(r["num_demos"]), int(r["seed"])) == (
            record["model"], record["format"], record["num_demos"], record["config"]["seed_everything"])
        assert (int(r["n"]), int(r["correct"])) == (record["n_eval"], record["correct"])
        assert float(r["accuracy"]) == pytest.approx(record["accuracy"])
        assert (float(r["wilson_low"]), float(r["wilson_high"])) == pytest.approx(
            (record["wilson_low"], record["wilson_high"]))
        assert float(r["parse_fail_rate"]) == pytest.approx(record["parse_failures"] / record["n_eval"])
        assert {k: int(r[f"err_{k}"]) for k in KINDS} == {k: int(record["metrics"][f"test/err_{k}"]) for k in KINDS}
        assert r["test_set"] == "interpolate"

    # seeds pooled: sum of correct over sum of n, in the markdown table
    md = (tmp_path / "report" / "table.md").read_text()
    pooled = md.split("# Seeds pooled")[1]
    seeds = [r for r in records if r["model"] == "smollm2" and r["format"] == "sub" and r["num_demos"] == 25]
    correct = sum(r["correct"] for r in seeds)
    (line,) = [x for x in pooled.splitlines() if x.startswith("| smollm2 | sub | interpolate | 25 |")]
    assert line.startswith(f"| smollm2 | sub | interpolate | 25 | 2 | 40 | {correct} | {correct / 40:.3f} |")
    # beside the pooled interval, the spread over training seeds
    accuracies = sorted(r["accuracy"] for r in seeds)
    assert accuracies[0] < accuracies[1] and line.endswith(f"| {accuracies[0]:.3f} | {accuracies[-1]:.3f} |")
    for name in PLOTS:
        assert (tmp_path / "report" / name).stat().st_size > 1000


def test_report_of_a_real_tiny_fit(tmp_path):
    main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_epochs=1", "--data.num_demos=8", "--data.num_test=4",
          "--data.format=direct", "--num_samples=0", f"--runs_dir={tmp_path / 'runs'}"])
    (run,) = (tmp_path / "runs").iterdir()
    record = json.loads((run / "run.json").read_text())
    report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    (row,) = csv.DictReader((tmp_path / "report" / "table.csv").open())
    assert (row["model"], row["format"], int(row["num_demos"]), int(row["seed"])) == ("tiny", "direct", 8, 0)
    assert (int(row["n"]), int(row["correct"])) == (record["n_eval"], record["correct"]) == (4, record["correct"])
    for name in ("accuracy.png", "parse_fail.png", "length_heatmap.png"):
        assert (tmp_path / "report" / name).is_file()


def test_keep_adds_an_earlier_reports_rows_whose_runs_are_gone(tmp_path):
    errors = dict.fromkeys(KINDS, 0) | {"subtraction": 3}
    fake_run(tmp_path / "runs" / "a", "smollm2", "sub", 50, 0, 10, 20, 1, errors)
    gone = fake_run(tmp_path / "old" / "b", "smollm2", "sub", 200, 0, 15, 20, 0, errors)
    report_main([str(tmp_path / "runs"), str(tmp_path / "old"), "--out", str(tmp_path / "report")])
    earlier = {r["run_dir"]: r for r in csv.DictReader((tmp_path / "report" / "table.csv").open())}
    # a later session: run b is gone, run a was tested again with another result, run c is new
    fake_run(tmp_path / "runs" / "a", "smollm2", "sub", 50, 0, 12, 20, 1, errors)
    fake_run(tmp_path / "runs" / "c", "gemma3-270m", "sub", 50, 0, 7, 20, 2, errors)
    table = tmp_path / "report" / "table.csv"
    assert report_main([str(tmp_path / "runs"), "--keep", str(table), "--out", str(tmp_path / "report")]) == 0
    rows = {r["run_dir"]: r for r in csv.DictReader(table.open())}
    assert set(rows) == {str(tmp_path / "runs" / "a"), gone["run_dir"], str(tmp_path / "runs" / "c")}
    assert rows[gone["run_dir"]] == earlier[gone["run_dir"]]
    assert rows[str(tmp_path / "runs" / "a")]["correct"] == "12"  # a found run wins over its earlier row
    assert "| gemma3-270m | sub | interpolate | 50 | 1 | 20 | 7 |" in (tmp_path / "report" / "table.md").read_text()
    # the kept rows alone make a report; a missing table is named
    assert report_main(["--keep", str(table), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "table.csv").read_text() == table.read_text()
    with pytest.raises(ValueError, match="no such file"):
        report_main(["--keep", str(tmp_path / "none.csv"), "--out", str(tmp_path / "out")])


def test_keep_carries_the_length_cells_of_runs_that_are_gone(tmp_path):
    errors = dict.fromkeys(KINDS, 0)
    gone = fake_run(tmp_path / "old" / "b", "smollm2", "sub", 200, 0, 15, 20, 0, errors)
    report_main([str(tmp_path / "old"), "--out", str(tmp_path / "report")])
    cells = tmp_path / "report" / "length_cells.csv"
    earlier = list(csv.DictReader(cells.open()))
    assert sum(int(c["n"]) for c in earlier) == 20 and sum(int(c["correct"]) for c in earlier) == 15
    assert {c["run_dir"] for c in earlier} == {gone["run_dir"]}
    # run b is gone; a new model's run is found: both panels' cells, and b's unchanged
    fake_run(tmp_path / "runs" / "c", "gemma3-270m", "sub", 50, 0, 7, 20, 2, errors)
    (tmp_path / "old" / "b" / "predictions.jsonl").unlink()
    (tmp_path / "old" / "b" / "run.json").unlink()
    report_main([str(tmp_path / "runs"), "--keep", str(tmp_path / "report" / "table.csv"),
                 "--out", str(tmp_path / "report")])
    now = list(csv.DictReader(cells.open()))
    assert [c for c in now if c["run_dir"] == gone["run_dir"]] == earlier
    assert sum(int(c["correct"]) for c in now if c["run_dir"] != gone["run_dir"]) == 7
    assert (tmp_path / "report" / "length_heatmap.png").is_file()
    # a report whose runs have no predictions and no earlier cells leaves no heatmap behind
    (tmp_path / "runs" / "c" / "predictions.jsonl").unlink()
    report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    assert not (tmp_path / "report" / "length_heatmap.png").exists()
    assert list(csv.DictReader(cells.open())) == []


def test_no_tested_run_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no tested run"):
        report_main([str(tmp_path), "--out", str(tmp_path / "out")])


def test_rates_of_zero_and_one_plot(tmp_path, monkeypatch):
    """A run that gets nothing right and parses nothing (a model from scratch) still gets its curves."""
    import matplotlib.axes

    errors = dict.fromkeys(KINDS, 0) | {"malformed": 500}
    fake_run(tmp_path / "runs" / "scratch", "scratch:smollm2-135m", "subrow", 200, 0, 0, 500, 500, errors)
    fake_run(tmp_path / "runs" / "direct", "smollm2", "direct", 200, 0, 1, 500, 0, dict.fromkeys(KINDS, 0))
    drawn, errorbar = [], matplotlib.axes.Axes.errorbar

    def spy(ax, xs, ys, yerr=None, **kwargs):
        drawn.append((ax.get_figure(), kwargs["label"].split(" / ")[:2], list(xs), list(ys), yerr))
        return errorbar(ax, xs, ys, yerr=yerr, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    # each figure draws both runs at their rate with its Wilson interval, clipped at 0 and 1 and never negative
    figures = list(dict.fromkeys(figure for figure, *_ in drawn))
    assert len(figures) == 2
    (accuracy, parse_fail) = ({tuple(label): (xs, ys, yerr) for figure, label, xs, ys, yerr in drawn if figure is f}
                              for f in figures)
    high0 = wilson(0, 500)[1]
    low1, high1 = wilson(1, 500)
    assert accuracy[("scratch:smollm2-135m", "subrow")] == ([200], [0.0], [[0.0], [pytest.approx(high0)]])
    assert accuracy[("smollm2", "direct")] == ([200], [0.002], [[pytest.approx(0.002 - low1)],
                                                                [pytest.approx(high1 - 0.002)]])
    assert parse_fail[("scratch:smollm2-135m", "subrow")] == ([200], [1.0], [[pytest.approx(1 - wilson(500, 500)[0])],
                                                                               [0.0]])
    assert parse_fail[("smollm2", "direct")] == ([200], [0.0], [[0.0], [pytest.approx(high0)]])

    rows = {r["model"]: r for r in csv.DictReader((tmp_path / "report" / "table.csv").open())}
    assert float(rows["scratch:smollm2-135m"]["parse_fail_rate"]) == 1.0
    for name in ("accuracy.png", "parse_fail.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000


def test_a_corrupt_run_json_is_skipped_with_a_warning(tmp_path):
    """One damaged record (cut short, or not text at all) does not stop the report of the others: it is named."""
    fake_run(tmp_path / "runs" / "good", "smollm2", "direct", 25, 0, 5, 10, 0, dict.fromkeys(KINDS, 0))
    (tmp_path / "runs" / "cut").mkdir()
    (tmp_path / "runs" / "cut" / "run.json").write_text('{"accuracy": 0.')
    (tmp_path / "runs" / "binary").mkdir()
    (tmp_path / "runs" / "binary" / "run.json").write_bytes(b"\x8a\xff\x00")
    proc = cli_process.run("report", str(tmp_path / "runs"), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("cut", "binary"):
        assert f"warning: skipped {tmp_path / 'runs' / name / 'run.json'}: " in proc.stderr
    (row,) = csv.DictReader((tmp_path / "report" / "table.csv").open())
    assert row["run_dir"] == str(tmp_path / "runs" / "good")


def test_an_accuracy_record_holds_the_counts_the_proportion_and_its_wilson_interval():
    from longdiv.stats import accuracy

    record = accuracy(843, 1000)
    assert record["correct"] == 843 and record["n_eval"] == 1000 and record["accuracy"] == 0.843
    assert (record["wilson_low"], record["wilson_high"]) == wilson(843, 1000)
    assert round(record["wilson_low"], 3) == 0.819 and round(record["wilson_high"], 3) == 0.864  # main_seeds' pooled
    assert accuracy(0, 0) == {"correct": 0, "n_eval": 0, "accuracy": 0.0, "wilson_low": 0.0, "wilson_high": 1.0}


def test_one_checkpoint_tested_twice_is_one_seed_when_pooled(tmp_path):
    fit = tmp_path / "runs" / "fit"
    fake_run(fit, "smollm2", "sub", 50, 0, 10, 20, 0, {})  # a fit tested after it ends, on 20 problems
    for name, correct, n, test_seed in (("again", 3, 4, 5), ("again2", 2, 4, 6)):  # its checkpoint tested twice more
        record = fake_run(tmp_path / "runs" / name, "smollm2", "sub", 50, test_seed, correct, n, 0, {})
        record["checkpoint"] = {"path": str(fit / "checkpoints" / "last.ckpt"), "use": "evaluated", "seed": 0}
        (tmp_path / "runs" / name / "run.json").write_text(json.dumps(record))
    fake_run(tmp_path / "runs" / "other", "smollm2", "sub", 50, 1, 5, 20, 0, {})  # a second training seed
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    rows = list(csv.DictReader((tmp_path / "report" / "table.csv").open()))
    assert sorted((r["seed"], r["trained"] == str(fit.resolve())) for r in rows) == [
        ("0", True), ("0", True), ("0", True), ("1", False)]  # each row with its training seed and checkpoint
    md = (tmp_path / "report" / "table.md").read_text().split("# Seeds pooled")[1]
    # two trained models, each counted once on its largest test: 10/20 and 5/20
    assert "| smollm2 | sub | interpolate | 50 | 2 | 40 | 15 | 0.375 |" in md


def test_a_checkpoint_tested_in_another_format_is_marked_and_pooled_apart(tmp_path):
    fake_run(tmp_path / "runs" / "sub", "smollm2", "sub", 50, 0, 10, 20, 0, {})
    record = fake_run(tmp_path / "runs" / "crossed", "smollm2", "sub", 50, 0, 2, 20, 0, {})
    record["checkpoint"] = {"path": str(tmp_path / "elsewhere" / "checkpoints" / "last.ckpt"), "use": "evaluated",
                            "format": "subrow", "seed": 0}
    (tmp_path / "runs" / "crossed" / "run.json").write_text(json.dumps(record))
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    rows = {r["run_dir"]: r for r in csv.DictReader((tmp_path / "report" / "table.csv").open())}
    assert rows[str(tmp_path / "runs" / "crossed")]["format"] == "sub (trained on subrow)"
    md = (tmp_path / "report" / "table.md").read_text().split("# Seeds pooled")[1]
    assert "| smollm2 | sub | interpolate | 50 | 1 | 20 | 10 |" in md


def test_a_rows_epochs_and_speed_count_every_training_example_and_token(tmp_path):
    from longdiv.report import row

    record = fake_run(tmp_path / "run", "smollm2", "subrow", 50, 0, correct=10, n=20, parse_failures=0, errors={})
    fit = {"fit_seconds": 100.0, "mean_tokens": 300.0, "train_windows": 500,  # 50 demonstrations and 450 own traces
           "history": [{"epoch": 0, "step": 150, "tokens": 540_000}]}
    (tmp_path / "run" / "run.json").write_text(json.dumps(record | fit))
    got = row(tmp_path / "run")
    assert got["optimizer_steps"] == 150 and got["epochs"] == 2.4  # 150 steps of 8 over 500 examples, not 50
    assert got["train_tokens_per_second"] == 5400.0  # the tokens counted, not the demonstrations' mean
    del fit["history"], fit["train_windows"]  # a record from before both were kept: the estimate from the demos
    (tmp_path / "run" / "run.json").write_text(json.dumps(record | fit))
    got = row(tmp_path / "run")
    assert got["epochs"] == 24.0 and got["train_tokens_per_second"] == 300 * 8 * 150 / 100


def test_a_kept_rows_trained_folder_is_named_as_a_found_rows_is(tmp_path, monkeypatch):
    from longdiv.report import kept_rows, row, table_row

    monkeypatch.chdir(tmp_path)
    fake_run(Path("runs/a"), "smollm2", "sub", 50, 0, 10, 20, 1, dict.fromkeys(KINDS, 0))
    found = table_row(row(Path("runs/a")))
    table = tmp_path / "table.csv"
    with table.open("w", newline="") as f:  # an earlier table named the same checkpoint by its absolute path
        writer = csv.DictWriter(f, fieldnames=list(found))
        writer.writeheader()
        writer.writerow(found | {"run_dir": "gone/a-test", "trained": str(tmp_path / "runs" / "a")})
    (kept,) = kept_rows(table, [found])
    assert kept["trained"] == found["trained"] == "runs/a"  # one checkpoint: pooled once
