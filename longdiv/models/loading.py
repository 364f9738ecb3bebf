"""Turns a model name into a causal LM and its tokenizer.

The names users type are in `longdiv.names`, their tokenizers in `longdiv.tokenizers`; the offline models' files
are in `longdiv.smollm2` and `longdiv.gemma3`. Here the model itself is made: from a hub id, a local folder or an
offline model's cache with `from_pretrained`, or at random init (`tiny`, `scratch:<arch>`) from a known
architecture's config (`longdiv.names.ARCHS`: given there, or an offline model's own), to measure what pretraining
buys and to test on toy models.

`config_overrides` changes a random-init architecture (for example `hidden_size: 32` to test a GPT-Neo config at
toy width). Nothing is loaded with `trust_remote_code`.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from longdiv.models import attention
from longdiv.names import ARCHS, TINY, check_arch, is_random_init
from longdiv.tokenizers import is_hub_id, load_tokenizer, not_found, pretrained_path


def random_config(arch: str, overrides: dict | None = None):
    found = ARCHS[check_arch(arch)]
    if found.offline:
        config = AutoConfig.from_pretrained(pretrained_path(found.offline))
    else:
        spec = dict(found.config)
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
    if is_random_init(name):
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
    if not is_random_init(name):
        return None
    vocab_size = len(load_tokenizer(tokenizer or name))
    with torch.device("meta"):
        model = load_model(name, config_overrides, vocab_size)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def load(name: str, tokenizer: str | None = None, config_overrides: dict | None = None):
    """Model and tokenizer for `name`; `tokenizer` overrides the tokenizer's name."""
    tok = load_tokenizer(tokenizer or name)
    model = load_model(name, config_overrides, vocab_size=len(tok) if is_random_init(name) else None)
    return model, tok
