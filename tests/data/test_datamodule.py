import json

import pytest
import torch

from longdiv.data.datamodule import BucketSampler, DivisionData, collate_eval, collate_train, windowed
from longdiv.data.problems import Problem

PAPER_TRAIN = "data/paper/train_numbers__div_remainder.txt"


def make(**kw):
    args = {"num_demos": 12, "num_val": 4, "num_test": 6, "tokenizer_name": "tiny", "batch_size": 4,
            "eval_batch_size": 3}
    data = DivisionData(**(args | kw))
    data.setup()
    return data


def test_loss_mask_comes_from_lengths_and_keeps_eos():
    data = make()
    ex = data.train_examples[:3]
    batch = collate_train(ex, pad_id=data.tokenizer.pad_token_id)
    eos = data.tokenizer.eos_token_id
    assert data.tokenizer.pad_token_id == eos  # the case where a pad-id mask would hide the EOS to be learned
    for row, e in enumerate(ex):
        n_prompt, n = len(e.prompt_ids), len(e)
        labels = batch["labels"][row]
        assert (labels[:n_prompt] == -100).all() and (labels[n:] == -100).all()
        assert labels[n - 1] == eos and labels[n_prompt:n].tolist() == e.completion_ids
        assert batch["attention_mask"][row].sum() == n and batch["input_ids"][row, n - 1] == eos


def test_subfix_slips_are_read_without_loss_in_whole_demonstrations_and_in_windows():
    data = DivisionData(format="subfix", num_demos=6, train_file=PAPER_TRAIN, num_val=2, num_test=2,
                        tokenizer_name="tiny")
    data.setup()
    decode, slips = data.tokenizer.decode, 0
    for example in data.train_examples:
        completion = data.format.render(example.problem)[1]
        wrong = [completion[start:end] for start, end in data.format.untrained(example.problem)]
        slips += len(wrong)
        assert decode(example.completion_ids[:-1]) == completion
        labels = collate_train([example], data.tokenizer.pad_token_id)["labels"][0][len(example.prompt_ids):]
        unlearned = "".join(decode([t]) for t, label in zip(example.completion_ids, labels) if label == -100)
        assert unlearned == "".join(wrong)  # the wrong lines' characters, and nothing else
        cut = windowed(example, len(example.prompt_ids) + 60)
        assert len(cut) > 2
        pieces = ["".join(decode([w.completion_ids[i]]) for i in w.untrained) for w in cut]
        assert "".join(pieces) == "".join(wrong)  # each window leaves out the slips among its new tokens
    assert slips > 6


def test_eval_batches_pad_on_the_left():
    data = make()
    items = list(enumerate(data.eval_examples["test"][:3]))
    batch = collate_eval(items, pad_id=data.tokenizer.pad_token_id)
    for row, (_, e) in enumerate(items):
        n = len(e.prompt_ids)
        assert batch["input_ids"][row, -n:].tolist() == e.prompt_ids
        assert batch["attention_mask"][row, -n:].all() and not batch["attention_mask"][row, :-n].any()
    assert batch["index"].tolist() == [i for i, _ in items] and batch["problems"] == [e.problem for _, e in items]
    assert batch["max_new_tokens"].tolist() == [len(e.completion_ids) + 16 for _, e in items]  # each row its own


def test_eval_batches_hold_traces_of_similar_length_longest_first():
    data = make(num_test=12, eval_batch_size=4)
    examples = data.eval_examples["test"]
    seen = [i for batch in data.test_dataloader() for i in batch["index"].tolist()]
    assert sorted(seen) == list(range(len(examples)))  # every problem once
    lengths = [len(examples[i].completion_ids) for i in seen]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]


def test_same_seed_same_bytes_other_seed_other_problems():
    a, b, c = make(data_seed=3), make(data_seed=3), make(data_seed=4)
    assert a.hash == b.hash and a.hash != c.hash
    assert [e.problem for e in a.train_examples] == [e.problem for e in b.train_examples]


def test_training_and_evaluation_share_no_problem(tmp_path, caplog):
    train = [Problem.from_numbers(d, 7) for d in range(100, 112)]
    path = tmp_path / "train.txt"
    path.write_text("".join(f"{p.question}|{p.remainder}\n" for p in train))
    evals = tmp_path / "eval.txt"  # 3 training problems and 2 new ones
    evals.write_text("".join(f"{p.question}|{p.remainder}\n"
                             for p in [*train[:3], *(Problem.from_numbers(d, 9) for d in (50, 51))]))
    with caplog.at_level("WARNING"):
        data = make(train_file=str(path), val_file=str(evals), test_file=str(evals))
    assert data.removed_overlap == 6
    keys = {p.key for p in train}
    assert all(e.problem.key not in keys for es in data.eval_examples.values() for e in es)
    assert len(data.eval_examples["test"]) == 2 and "removed 3 test problems" in caplog.text


def test_a_prompt_longer_than_the_models_window_is_a_clear_error():
    # A longer demonstration trains as windows (tests/data/test_windows.py); a prompt must fit with room after it.
    with pytest.raises(ValueError, match=r"prompt is \d+ tokens .* but the context is 50, which leaves no room"):
        make(max_length=50)


def test_num_demos_larger_than_file():
    with pytest.raises(ValueError, match=r"num_demos is 300 but .*holds 200 problems; lower num_demos"):
        make(num_demos=300, train_file=PAPER_TRAIN)


def test_an_empty_batch_is_refused_when_the_data_is_made_not_when_a_loader_is():
    with pytest.raises(ValueError, match=r"^batch_size is 0; it must be at least 1; eval_batch_size is -1; it must"):
        DivisionData(batch_size=0, eval_batch_size=-1)


def test_missing_file_and_unknown_format_are_named():
    with pytest.raises(ValueError, match=r"test_file 'nope.txt' does not exist"):
        DivisionData(test_file="nope.txt")
    with pytest.raises(ValueError, match=r"format 'grid' is unknown; choose one of: .*sub"):
        DivisionData(format="grid")


@pytest.mark.parametrize("world", [1, 2, 3])
def test_bucket_sampler_loses_and_duplicates_nothing(world):
    lengths = [(i * 37) % 101 for i in range(50)]
    shards = [BucketSampler(lengths, 4, seed=1, rank=r, world=world) for r in range(world)]
    for s in shards:
        s.set_epoch(2)
    seen = [i for s in shards for i in s]
    assert set(seen) == set(range(50))
    batches = [b for s in shards for b in s.batches()]
    # padding to equal steps per rank repeats whole batches, and only then
    assert len(seen) - 50 == sum(map(len, batches)) - 50 < 4 * world
    assert len({len(s.batches()) for s in shards}) == 1


def test_bucketing_cuts_padding():
    data = make(num_demos=64, batch_size=8)
    loader = data.train_dataloader()
    real = padded = 0
    for batch in loader:
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    shuffled = torch.tensor([len(e) for e in data.train_examples])
    naive = sum(int(chunk.max()) * len(chunk) for chunk in shuffled.split(8))
    assert real / padded > shuffled.sum().item() / naive


def _merging_bpe(texts: list[str]):
    """A byte-level BPE with GPT-2's pre-tokenizer, trained on `texts`: it merges digit runs and punctuation."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<eos>")


@pytest.mark.parametrize("fmt", ["sub", "subrow", "subtag", "subcopy", "subfix"])
def test_character_layouts_get_one_token_per_character_from_a_merging_tokenizer(fmt):
    data = DivisionData(format=fmt, num_demos=20, train_file=PAPER_TRAIN, num_val=2, num_test=2, tokenizer_name="tiny")
    problems = data.train_problems()
    rendered = [data.format.render(p) for p in problems]
    data.tokenizer = _merging_bpe([prompt + completion for prompt, completion in rendered])
    natural = data.tokenizer([c for _, c in rendered], add_special_tokens=False)["input_ids"]
    assert any(len(ids) < len(c) for ids, (_, c) in zip(natural, rendered))  # it does merge characters
    for example, (prompt, completion) in zip(data.encode(problems), rendered):
        assert len(example.completion_ids) == len(completion) + 1  # and the EOS
        assert data.tokenizer.decode(example.completion_ids[:-1]) == completion
        layout = prompt.split("\n", 1)[1]
        assert [data.tokenizer.decode([i]) for i in example.prompt_ids[-len(layout):]] == list(layout)
        assert data.tokenizer.decode(example.prompt_ids) == prompt
    direct = DivisionData(format="direct", num_demos=20, train_file=PAPER_TRAIN, tokenizer_name="tiny")
    direct.tokenizer = data.tokenizer  # formats without a character layout keep the tokenizer's own tokens
    prompt, completion = direct.format.render(problems[0])
    assert direct.encode(problems[:1])[0].completion_ids[:-1] == data.tokenizer(completion, add_special_tokens=False)[
        "input_ids"]


def test_an_eval_batch_moves_its_tensors_and_keeps_its_problems():
    data = DivisionData(num_demos=8, num_val=2, num_test=5, tokenizer_name="tiny")
    data.setup()
    items = list(enumerate(data.eval_examples["test"]))
    batch = collate_eval(items, data.tokenizer.pad_token_id, data.context)
    moved = data.transfer_batch_to_device(batch, torch.device("cpu"), 0)
    assert moved.keys() == batch.keys() and moved["problems"] == [e.problem for _, e in items]
    assert all(torch.equal(moved[k], batch[k]) for k in batch if torch.is_tensor(batch[k]))
    assert moved["context"] == batch["context"] == data.context == 2048  # a plain int, as generation takes it
    train = collate_train(data.train_examples[:2], data.tokenizer.pad_token_id)
    assert data.transfer_batch_to_device(train, torch.device("cpu"), 0).keys() == train.keys()


def test_self_training_adds_the_right_traces_as_written_and_keeps_their_problems_out_of_evaluation(tmp_path):
    plain = make()
    test = plain.eval_problems("test")
    right, also_right, wrong = test[1], Problem.from_numbers(800, 7), test[0]
    written = {right: "a trace the model wrote\n", also_right: "p8.7\n", wrong: "p0.0\n"}
    traces = tmp_path / "predictions.jsonl"
    traces.write_text("".join(json.dumps({"index": i, "question": p.question, "dividend": p.dividend,
                                          "divisor": p.divisor, "generated": text, "correct": p is not wrong}) + "\n"
                              for i, (p, text) in enumerate(written.items())))
    data = make(self_traces=str(traces))
    assert len(data.demos) == 12 and [e.problem for e in data.demos] == [e.problem for e in plain.demos]
    assert [e.problem for e in data.self_examples] == [right, also_right]
    for example in data.self_examples:  # the format's prompt, then the model's text as written, then EOS
        assert example.prompt_ids == plain.encode([example.problem])[0].prompt_ids
        assert data.tokenizer.decode(example.completion_ids[:-1]) == written[example.problem]
        assert example.completion_ids[-1] == data.tokenizer.eos_token_id
    assert data.train_examples == data.demos + data.self_examples
    # a problem trained on is never a test problem; one whose trace was wrong is not trained on, so it stays
    eval_keys = {ex.problem.key for ex in data.eval_examples["test"]}
    assert wrong.key in eval_keys and right.key not in eval_keys and data.removed_overlap == 1
    assert data.hash != plain.hash
    assert {right.key, also_right.key} <= {tuple(k) for k in data.identity["train_keys"]}
