import hashlib

import pytest

from longdiv import smollm2
from longdiv.models import loading
from longdiv.names import ARCHS
from longdiv.tokenizers import load_tokenizer, pretrained_path
from tests.models.test_gemma3 import needs_gemma

KNOWN = "gpt-neo-125m, gpt-neo-1.3b, gpt-neo-2.7b, tiny, smollm2-135m, gemma3-270m"


# The published shapes (width, layers, heads, vocabulary) of each architecture `scratch:<name>` builds.
PUBLISHED = {
    "gpt-neo-125m": ("gpt_neo", 768, 12, 12, 50257),
    "gpt-neo-1.3b": ("gpt_neo", 2048, 24, 16, 50257),
    "gpt-neo-2.7b": ("gpt_neo", 2560, 32, 20, 50257),
    "tiny": ("gpt_neo", 32, 2, 2, 50257),
    "smollm2-135m": ("llama", 576, 30, 9, 49152),
    "gemma3-270m": ("gemma3_text", 640, 18, 4, 262144),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_gemma) if n.startswith("gemma") else n for n in ARCHS])
def test_every_scratch_architecture_has_its_published_config_and_a_tokenizer(name):
    arch = ARCHS[name]
    assert (arch.config is None) != (arch.offline is None)  # given here, or read from the offline model
    assert arch.tokenizer == (arch.offline or ("char" if name == "tiny" else "EleutherAI/gpt-neo-125m"))
    config = loading.random_config(name)
    layers = getattr(config, "num_layers", None) or config.num_hidden_layers
    heads = getattr(config, "num_heads", None) or config.num_attention_heads
    assert (config.model_type, config.hidden_size, layers, heads, config.vocab_size) == PUBLISHED[name]
    tiny = loading.random_config(name, {"hidden_size": 32})  # overrides change the named field only
    assert (tiny.hidden_size, tiny.model_type, tiny.vocab_size) == (32, config.model_type, config.vocab_size)


@pytest.mark.parametrize("name", ["tiny", "char", "scratch:tiny"])
def test_the_character_tokenizer_names(name):
    tok = load_tokenizer(name)
    assert tok("93-", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(c) for c in "93-"]
    assert tok.pad_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|endoftext|>")


def test_an_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match=f"architecture 'nope' is unknown; choose one of: {KNOWN}$"):
        load_tokenizer("scratch:nope")
    with pytest.raises(ValueError, match=f"architecture 'nope' is unknown; choose one of: {KNOWN}$"):
        loading.load_model("scratch:nope")


def test_an_unknown_model_lists_the_names():
    names = f"'smollm2', 'gemma3-270m', 'tiny', 'scratch:<{KNOWN.replace(', ', '|')}>', or a hub id / local folder"
    with pytest.raises(ValueError) as err:
        load_tokenizer("nope")
    assert str(err.value) == f"model 'nope' is unknown; use {names}"


def test_the_smollm2_cache_is_keyed_on_the_gguf_files_hash(tmp_path, monkeypatch):
    gguf = tmp_path / "wheel" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"not really a gguf")
    monkeypatch.setattr(smollm2, "gguf_path", lambda: gguf)
    monkeypatch.setenv("LONGDIV_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / f"smollm2-135m-{hashlib.sha256(b'not really a gguf').hexdigest()[:16]}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert smollm2.smollm2_folder() == folder == pretrained_path("smollm2")  # a cache hit reads nothing else


def test_the_cache_defaults_to_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("LONGDIV_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert smollm2.cache_dir() == tmp_path / ".cache" / "longdiv"
