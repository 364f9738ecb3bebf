"""`--model.restrict_vocab`: the output layer computed for the format's characters alone, in training and decoding."""

import json

import pytest
import torch
import torch.nn.functional as F

from longdiv.data.datamodule import DivisionData, collate_eval, collate_train
from longdiv.data.formats import get_format
from longdiv.models.decode import decode
from longdiv.models.module import DivisionLM, completion_loss


def setup_pair():
    torch.manual_seed(0)
    module = DivisionLM(model="tiny", restrict_vocab=True, config_overrides={"initializer_range": 0.5})
    data = DivisionData(num_demos=4, num_val=1, num_test=4, tokenizer_name="tiny")
    data.setup()
    return module, data


def test_the_restricted_loss_is_the_softmax_over_the_formats_tokens():
    module, data = setup_pair()
    vocab = module.output_vocab
    assert len(vocab) < len(module.tokenizer) and module.tokenizer.eos_token_id in vocab.tolist()
    batch = collate_train(data.train_examples, data.tokenizer.pad_token_id)
    labels = batch["labels"][:, 1:]
    assert set(labels[labels != -100].tolist()) <= set(vocab.tolist())  # every target is one of them
    restricted = completion_loss(module.model, batch["input_ids"], batch["attention_mask"], batch["labels"],
                                 vocab=vocab)
    logits = module.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    keep = labels != -100
    remap = {token: i for i, token in enumerate(vocab.tolist())}
    expected = F.cross_entropy(logits[keep][:, vocab], torch.tensor([remap[t] for t in labels[keep].tolist()]))
    torch.testing.assert_close(restricted, expected)
    assert restricted < completion_loss(module.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    outside = batch["labels"].clone()
    outside[outside != -100] = int(torch.isin(torch.arange(len(module.tokenizer)), vocab, invert=True).nonzero()[0])
    with pytest.raises(ValueError, match="a completion holds a token outside the format's alphabet"):
        completion_loss(module.model, batch["input_ids"], batch["attention_mask"], outside, vocab=vocab)


def test_restricted_decoding_is_greedy_over_the_formats_tokens_and_leaves_the_model_as_it_was():
    module, data = setup_pair()
    model, vocab = module.model.eval(), module.output_vocab
    batch = collate_eval(list(enumerate(data.eval_examples["test"])), data.tokenizer.pad_token_id)
    head = model.get_output_embeddings()
    got = decode(model, batch["input_ids"], batch["attention_mask"], 30, module.tokenizer.eos_token_id, vocab=vocab)
    assert model.get_output_embeddings() is head and head.weight is model.get_input_embeddings().weight

    banned = torch.ones(len(module.tokenizer), dtype=torch.bool)
    banned[vocab] = False
    hook = head.register_forward_hook(lambda m, a, out: out.masked_fill(banned, float("-inf")))
    expected = decode(model, batch["input_ids"], batch["attention_mask"], 30, module.tokenizer.eos_token_id)
    hook.remove()
    free = decode(model, batch["input_ids"], batch["attention_mask"], 30, module.tokenizer.eos_token_id)
    assert got == expected and any(got)
    assert all(set(row) <= set(vocab.tolist()) for row in got)
    assert any(set(row) - set(vocab.tolist()) for row in free)  # unrestricted, this model writes other tokens


def test_a_format_without_an_alphabet_is_refused():
    with pytest.raises(ValueError,
                       match="restrict_vocab needs a format that writes a fixed set of characters or words"):
        DivisionLM(model="tiny", format="direct", restrict_vocab=True)


def test_a_restricted_fit_trains_and_tests_through_the_cli(tmp_path):
    from longdiv.cli import main

    run = main(["fit", "--config", "configs/tiny.yaml", "--model.restrict_vocab=true", "--trainer.max_steps=2",
                "--data.num_demos=8", "--data.num_test=4", "--trainer.logger=false", f"--runs_dir={tmp_path}"])
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    alphabet = get_format("subrow").alphabet
    assert len(rows) == 4 and all(set(row["generated"]) <= set(alphabet) for row in rows)


@pytest.mark.parametrize("tokenizer_name", ["smollm2", "tiny"])
def test_every_paper_format_completion_is_written_in_its_lexicons_tokens(tokenizer_name):
    from longdiv.data.problems import Problem, read_file
    from longdiv.models.module import output_tokens
    from longdiv.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_name)
    problems = read_file("data/paper/train_numbers__div_remainder.txt")[:60]
    # past the paper's sizes: coordinates and tags of three digits, zeros to borrow across, a divisor above the rest
    problems += [Problem.from_numbers(*pair)
                 for pair in [(int("9" * 30), 7), (10**24 + 1, 999_999_937), (10**12, 3), (5, 9)]]
    for variant in ("recchia-w", "recchia-ln+"):
        fmt = get_format(variant)
        allowed = set(output_tokens(fmt, tokenizer).tolist())
        assert len(allowed) < min(len(tokenizer), 2000)
        for problem in problems:
            prompt, completion = fmt.render(problem)
            ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
            written = ids[len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) :]
            assert set(written) <= allowed, (variant, problem, tokenizer.convert_ids_to_tokens(set(written) - allowed))
