import hashlib

import pytest

from longdiv import smollm2
from longdiv.models import loading
from longdiv.names import ARCHS
from longdiv.tokenizers import load_tokenizer, pretrained_path

KNOWN = "gpt-neo-125m, gpt-neo-1.3b, gpt-neo-2.7b, tiny, smollm2-135m, gemma3-270m"


def test_every_scratch_architecture_has_a_config_and_a_tokenizer():
    for arch in ARCHS.values():
        assert arch.tokenizer and (arch.config is None) != (arch.offline is None)
    tiny = loading.random_config("gpt-neo-125m", {"hidden_size": 32, "num_heads": 2})
    assert (type(tiny).__name__, tiny.num_layers, tiny.hidden_size) == ("GPTNeoConfig", 12, 32)


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
