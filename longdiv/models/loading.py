"""Turns a model name into a causal LM and its tokenizer.

The names users type, and their tokenizers, are in `longdiv.tokenizers`; the offline models' files are in
`longdiv.smollm2` and `longdiv.gemma3`. Here the model itself is made: from a hub id, a local folder or an offline
model's cache with `from_pretrained`, or at random init (`tiny`, `scratch:<arch>`) from a known architecture's config
(`ARCHS`, or an offline model's own), to measure what pretraining buys and to test on toy models.

`config_overrides` changes a random-init architecture (for example `hidden_size: 32` to test a GPT-Neo config at
toy width). Nothing is loaded with `trust_remote_code`.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from longdiv.models import attention
from longdiv.tokenizers import TINY, check_arch, is_hub_id, load_tokenizer, not_found, pretrained_path

_NEO = {
    "model_type": "gpt_neo",
    "vocab_size": 50257,
    "max_position_embeddings": 2048,
    "window_size": 256,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
}
# Configs of the random-init architectures; those of `OFFLINE_ARCHS` are the offline models' own.
ARCHS = {
    "gpt-neo-125m": dict(_NEO, hidden_size=768, num_layers=12, num_heads=12, attention_types=[[["global", "local"], 6]]),
    "gpt-neo-1.3b": dict(_NEO, hidden_size=2048, num_layers=24, num_heads=16, attention_types=[[["global", "local"], 12]]),
    "gpt-neo-2.7b": dict(_NEO, hidden_size=2560, num_layers=32, num_heads=20, attention_types=[[["global", "local"], 16]]),
    "tiny": dict(_NEO, hidden_size=32, num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]]),
}
# The random-init architectures read from an offline model's config: the model each reads.
OFFLINE_ARCHS = {"smollm2-135m": "smollm2", "gemma3-270m": "gemma3-270m"}


def random_config(arch: str, overrides: dict | None = None):
    if check_arch(arch) in OFFLINE_ARCHS:
        config = AutoConfig.from_pretrained(pretrained_path(OFFLINE_ARCHS[arch]))
    else:
        spec = dict(ARCHS[arch])
        config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"config_overrides: {type(config).__name__} has no field {key!r}; check the name")
        setattr(config, key, value)
    return config


def load_model(name: str, config_overrides: dict | None = None, vocab_size: int | None = None):
    """The causal LM called `name`, attending with `longdiv.models.attention` where its architecture allows.
    Random-init models take `config_overrides` and `vocab_size` (to match a tokenizer other than the architecture's
    own)."""
    if name == TINY or name.startswith("scratch:"):
        config = random_config(TINY if name == TINY else name.split(":", 1)[1], config_overrides)
        if vocab_size is not None:
            config.vocab_size = vocab_size
        return attention.use(AutoModelForCausalLM.from_config(config))
    if config_overrides:
        raise ValueError(f"config_overrides apply to random-init models only; drop them for model {name!r}")
    try:
        model = AutoModelForCausalLM.from_pretrained(pretrained_path(name), dtype=torch.float32)
    except OSError as err:
        if not is_hub_id(name):
            raise
        raise not_found(name, "--model.model", err) from err
    return attention.use(model)


def random_init_shapes(name: str, tokenizer: str | None = None,
                       config_overrides: dict | None = None) -> dict[str, tuple[int, ...]] | None:
    """The parameter shapes `load` would give a random-init model, worked out on the meta device (no memory); None for
    a pretrained model, whose shapes are its files'."""
    if not (name == TINY or name.startswith("scratch:")):
        return None
    vocab_size = len(load_tokenizer(tokenizer or name))
    with torch.device("meta"):
        model = load_model(name, config_overrides, vocab_size)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def load(name: str, tokenizer: str | None = None, config_overrides: dict | None = None):
    """Model and tokenizer for `name`; `tokenizer` overrides the tokenizer's name."""
    tok = load_tokenizer(tokenizer or name)
    random_init = name == TINY or name.startswith("scratch:")
    model = load_model(name, config_overrides, vocab_size=len(tok) if random_init else None)
    return model, tok
