"""Reproducible runs, no contamination, and an evaluation that survives anything a model writes."""

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch

import longdiv.data.datamodule
from longdiv.cli import main
from longdiv.data.datamodule import DivisionData
from longdiv.data.formats import get_format
from longdiv.data.problems import Problem, generate
from longdiv.models.module import DivisionLM

TINY = [
    "fit", "--config", "configs/tiny.yaml", "--data.format=direct", "--data.train_file=null", "--data.val_file=null",
    "--data.num_demos=16", "--data.batch_size=4", "--data.num_val=3", "--data.num_test=6", "--trainer.max_epochs=1",
    "--trainer.logger=false", "--trainer.enable_progress_bar=false",
]


def run(runs_dir: Path, *args: str) -> Path:
    main([*TINY, f"--runs_dir={runs_dir}", *args])
    (folder,) = runs_dir.iterdir()
    return folder


def test_same_seeds_give_the_same_run(tmp_path, one_thread, caplog):
    with caplog.at_level("INFO"):
        a, b = (run(tmp_path / name, "--seed_everything=3", "--data.data_seed=5") for name in "ab")
    records = [json.loads((r / "run.json").read_text()) for r in (a, b)]
    assert records[0]["data_hash"] == records[1]["data_hash"] and f"data hash {records[0]['data_hash']}" in caplog.text
    assert records[0]["metrics"] == records[1]["metrics"] and records[0]["n_eval"] == 6
    assert (records[0]["data_seed"], records[0]["order_seed"]) == (5, 3)  # the training seed orders the demos
    assert (a / "predictions.jsonl").read_bytes() == (b / "predictions.jsonl").read_bytes()
    weights = [torch.load(r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for r in (a, b)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    # The training seed leaves the data alone; the data seed changes it.
    hashes = {}
    for name, seeds in {"seed": ["--seed_everything=4", "--data.data_seed=5"],
                        "data": ["--seed_everything=3", "--data.data_seed=6"]}.items():
        folder = run(tmp_path / name, *seeds, "--trainer.fast_dev_run=true")
        hashes[name] = json.loads((folder / "run.json").read_text())["data_hash"]
    assert hashes["seed"] == records[0]["data_hash"] != hashes["data"]


def test_data_ignores_the_global_random_state():
    made = []
    for seed in (1, 2):
        L.seed_everything(seed)
        data = DivisionData(num_demos=8, num_val=3, num_test=4, data_seed=7)
        data.setup()
        made.append(data)
    a, b = made
    assert a.hash == b.hash
    assert [(e.prompt_ids, e.completion_ids) for e in a.train_examples] == [
        (e.prompt_ids, e.completion_ids) for e in b.train_examples
    ]
    assert {k: [e.problem for e in v] for k, v in a.eval_examples.items()} == {
        k: [e.problem for e in v] for k, v in b.eval_examples.items()
    }


def test_overlap_from_every_source_is_removed_and_counted(tmp_path, monkeypatch, caplog):
    train = generate("train", 12, 0)
    real_generate = longdiv.data.datamodule.generate

    def eval_draw_repeats_training(split, count, seed):  # as if the generator drew two training problems again
        problems = real_generate(split, count, seed)
        return problems if split == "train" else [*train[:2], *problems]

    monkeypatch.setattr(longdiv.data.datamodule, "generate", eval_draw_repeats_training)
    test_file = tmp_path / "test.txt"  # three training problems in the other template, and two new ones
    repeats = [Problem(p.dividend, p.divisor, f"Calculate the remainder when {p.dividend} is divided by {p.divisor}.")
               for p in train[2:5]]
    fresh = [Problem.from_numbers(50, 9), Problem.from_numbers(51, 9)]
    test_file.write_text("".join(f"{p.question}|{p.remainder}\n" for p in [*repeats, *fresh]))
    with caplog.at_level("INFO"):
        data = DivisionData(num_demos=12, num_val=3, test_file=str(test_file))
        data.setup()
    assert [e.problem for e in data.train_examples] == train
    assert data.removed_overlap == 5 and len(data.eval_examples["val"]) == 3 and len(data.eval_examples["test"]) == 2
    keys = {p.key for p in train}
    assert not any(e.problem.key in keys for es in data.eval_examples.values() for e in es)
    assert "removed 2 val problems" in caplog.text and "removed 3 test problems" in caplog.text
    assert "removed 5 overlapping" in caplog.text


def test_the_run_record_counts_removed_problems(tmp_path):
    train = generate("train", 16, 0)
    test_file = tmp_path / "test.txt"
    test_file.write_text("".join(f"{p.question}|{p.remainder}\n" for p in [*train[:3], Problem.from_numbers(50, 9)]))
    folder = run(tmp_path / "runs", "--data.data_seed=0", f"--data.test_file={test_file}",
                 "--trainer.fast_dev_run=true")
    assert json.loads((folder / "run.json").read_text())["removed_overlap"] == 3


# What a model might write: no EOS before the limit, nothing, garbage, unicode, a 10,000-digit number, several
# remainder claims, control characters, and one right answer.
HOSTILE_GENERATIONS = [
    "1" * 3000,
    "",
    "\x00\x07garbage ]]][[[ =-=-=",
    "ünïcødé 🙂 ٣٤ ３４ ² ∞",
    "9" * 10_000,
    "34\n35\n=34\n=043\nThe remainder is 12.",
    "\n\n\n",
    None,  # the right answer, filled in per problem
]


@pytest.mark.parametrize("format_name", ["sub", "direct", "recchia-bare"])
def test_evaluation_counts_whatever_the_model_writes(format_name, monkeypatch):
    torch.manual_seed(0)
    data = DivisionData(format=format_name, num_demos=4, num_val=2, num_test=len(HOSTILE_GENERATIONS),
                        eval_batch_size=3)
    module = DivisionLM(format=format_name)

    def generate_hostile(self, input_ids, attention_mask, max_new_tokens, votes=1, seed=0, context=None, seeds=None):
        assert votes == 1  # one greedy trace a problem, as the default evaluation
        texts = []
        for row in range(input_ids.shape[0]):
            text = HOSTILE_GENERATIONS[len(self.records) + row]
            if text is None:
                prompt = input_ids[row][attention_mask[row].bool()].tolist()
                (problem,) = [e.problem for e in self.trainer.datamodule.eval_examples["test"]
                              if e.prompt_ids == prompt]
                text = self.format.render(problem)[1]
            texts.append(text)
        return texts

    monkeypatch.setattr(DivisionLM, "generate", generate_hostile)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    (metrics,) = trainer.test(module, datamodule=data)
    n = len(HOSTILE_GENERATIONS)
    assert len(module.records) == n and sorted(r["index"] for r in module.records) == list(range(n))
    assert all(math.isfinite(v) for v in metrics.values())
    # What each text claims, read by hand from the format's rule: only the text of several claims holds one that
    # parses (sub: the first `=` line, digits least significant first; direct: the first `=` number; recchia-bare
    # has no `{ final remainder is ... }`), and none of the others claims anything.
    claim = {"sub": 43, "direct": 34, "recchia-bare": None}[format_name]
    for text, r in zip(HOSTILE_GENERATIONS, module.records):  # the records in the order the texts were written
        truth = r["dividend"] % r["divisor"]
        assert text is None or r["generated"].strip() == text.strip()
        expected = truth if text is None else claim if text.startswith("34\n35") else None
        assert r["parsed"] == expected and r["correct"] == (expected == truth)
        # nothing claimed is malformed; a wrong claim in a text of no steps is a wrong answer in `direct`, whose
        # trace is the answer, and malformed where steps should come first
        wrong_answer = (format_name, expected) == ("direct", 34)
        assert r["error_kind"] == (None if expected == truth else "final_answer" if wrong_answer else "malformed")
    parse_failures = sum(r["parsed"] is None for r in module.records)
    assert parse_failures == (n - 1 if claim is None else n - 2)
    assert metrics["test/parse_fail_rate"] == pytest.approx(parse_failures / n)
    correct = sum(r["correct"] for r in module.records)
    assert correct >= 1 and metrics["test/remainder_acc"] == pytest.approx(correct / n)
    fmt = get_format(format_name)
    # only the rendered trace is right, and no hostile text parses to the right remainder by chance
    right = [r for r in module.records if r["correct"]]
    assert [r["generated"] for r in right] == [fmt.render(Problem(right[0]["dividend"], right[0]["divisor"],
                                                                  right[0]["question"]))[1]]
    assert right[0]["error_kind"] is None


def test_the_training_seed_orders_the_demonstrations(monkeypatch):
    def order(seed_everything: int | None, **kwargs) -> list[int]:
        monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
        if seed_everything is not None:
            L.seed_everything(seed_everything)
        data = DivisionData(num_demos=40, num_val=1, num_test=1, data_seed=7, batch_size=1, **kwargs)
        data.setup()
        return [index for batch in data.train_dataloader().batch_sampler for index in batch]

    three, four = order(3), order(4)
    assert sorted(three) == sorted(four) == list(range(40)) and three != four
    assert order(3) == three  # the same seed, the same order
    assert order(4, order_seed=3) == three  # an explicit order seed wins
    assert order(None) == order(1, order_seed=7)  # no training seed: the data seed orders
