"""The benchmark helpers that committed reports depend on: the GPU run's packing and collection, the gemm timer."""

import csv
import json
import sys
import tarfile
from pathlib import Path

import torch
from test_report import fake_run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gemm_peak
import gpu
import recchia_errors


def test_gpu_run_returns_records_but_no_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    point = Path("runs/gpu/smollm2-subrow-n25-s0")
    fake_run(point, "smollm2", "subrow", 25, 0, correct=3, n=10, parse_failures=1, errors={"subtraction": 6})
    (point / "checkpoints").mkdir()
    (point / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    unfinished = Path("runs/gpu/smollm2-subrow-n50-s0")
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("trainer: {}\n")
    paper_row = Path("runs/formats/smollm2-recchia-w-n200-s0")  # a main-recipe point and its paper test
    fake_run(paper_row, "smollm2", "recchia-w", 200, 0, correct=1, n=4, parse_failures=0, errors={})
    (paper_row / "checkpoints").mkdir()
    (paper_row / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    fake_run(paper_row / "paper_val", "smollm2", "recchia-w", 200, 0, correct=2, n=4, parse_failures=0, errors={})
    (tmp_path / "out").mkdir()

    gpu.pack(tmp_path / "out")

    with tarfile.open(tmp_path / "out" / "runs.tgz") as tar:
        assert sorted(tar.getnames()) == sorted(
            f"{folder}/{name}" for folder in (point, paper_row, paper_row / "paper_val")
            for name in ("predictions.jsonl", "run.json"))


def test_collect_rebuilds_the_report_and_the_speed_record(tmp_path, monkeypatch):
    back = tmp_path / "back"  # what the GPU machine returned
    monkeypatch.chdir(back.parent)
    records = {}
    for num_demos, correct in ((25, 2), (800, 9)):
        folder = Path(f"runs/gpu/smollm2-subrow-n{num_demos}-s0")
        records[num_demos] = fake_run(folder, "smollm2", "subrow", num_demos, 0, correct, 10, 0, {"subtraction": 1})
    back.mkdir()
    gpu.pack(back)
    (back / "speed_gpu.json").write_text(json.dumps({"device": "cuda", "decode_speedup": 100.0}))
    for path in Path("runs/gpu").rglob("*"):  # only the archive carries the runs now
        if path.is_file():
            path.unlink()
    Path("reports").mkdir()
    Path("reports/speed.json").write_text(json.dumps({"device": "cpu", "decode_speedup": 9.4}))

    gpu.collect(back)

    with open("reports/ablation_gpu/table.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((int(r["num_demos"]), int(r["correct"])) for r in rows) == sorted(
        (n, rec["correct"]) for n, rec in records.items())
    speed = json.loads(Path("reports/speed.json").read_text())
    assert speed["decode_speedup"] == 9.4 and speed["gpu"] == {"device": "cuda", "decode_speedup": 100.0}


def test_gemm_timer_counts_every_product(monkeypatch):
    calls = []
    real = torch.matmul

    def counted(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(torch, "matmul", counted)
    rate = gemm_peak.flops_per_second(32, 16, 8, torch.float32, seconds=0.05)
    timed = len(calls) - 1  # the first product is the warm-up
    assert timed >= 1
    # FLOP/s = 2*m*k*n per timed product over at most the measured time and at least the requested one.
    assert 2 * 32 * 16 * 8 * timed / 5.0 < rate <= 2 * 32 * 16 * 8 * timed / 0.05


def test_recchia_first_error_finds_the_corrupted_action():
    from longdiv.data.formats import get_format
    from longdiv.data.problems import Problem

    _, completion = get_format("recchia-w").render(Problem(4083, 17, "What is the remainder when 4083 is divided by 17?"))
    reference = recchia_errors.actions(completion)
    assert " ".join(reference) == completion  # the split loses nothing
    assert recchia_errors.first_error(reference, list(reference)) == ("right trace", len(reference))
    assert recchia_errors.first_error(reference, reference[:-3]) == ("unfinished", len(reference) - 3)

    def corrupt(index: int, old: str, new: str) -> list[str]:
        wrong = list(reference)
        wrong[index] = wrong[index][::-1].replace(old[::-1], new[::-1], 1)[::-1]  # the action's last `old`
        assert wrong[index] != reference[index]
        return wrong

    assert recchia_errors.first_error(reference, corrupt(0, "3", "4")) == ("copy", 0)
    addition = next(i for i, a in enumerate(reference) if recchia_errors.cells(a) and len(recchia_errors.cells(a)) == 1
                    and recchia_errors.cells(a)[0][0] >= recchia_errors.SCRATCH_X and recchia_errors.cells(a)[0][2].isdigit())
    digit = reference[addition][-1]
    assert recchia_errors.first_error(reference, corrupt(addition, digit, str((int(digit) + 1) % 10))) == ("addition", addition)
    # stopping the repeated addition one multiple early: the subtraction starts where the quotient should grow
    step = next(i for i, a in enumerate(reference) if recchia_errors.is_quotient_step(recchia_errors.cells(a)))
    early = reference[:step] + [next(a for a in reference[step:] if a.endswith(" -"))]
    assert recchia_errors.first_error(reference, early) == ("comparison", step)
    assert recchia_errors.first_error(reference, reference[:-1] + ["{ final remainder is 9 }"]) == ("answer", len(reference) - 1)
