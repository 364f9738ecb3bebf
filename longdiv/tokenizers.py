"""The tokenizer each model name comes with (the names are in `longdiv.names`). Both the data module and the model
loader read tokenizers here, so the data layer never imports the models. Tokenizers without a pad token pad with
EOS. Nothing is loaded with `trust_remote_code`.
"""

from __future__ import annotations

import string
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from longdiv.errors import UsageError
from longdiv.names import ARCHS, CHAR, OFFLINE, TINY, check_arch, model_names


def pretrained_path(name: str) -> str | Path:
    """Where `from_pretrained` reads the pretrained model `name`: an offline model's cache folder, or the name itself
    when it is a local folder or an `owner/name` hub id."""
    if name in OFFLINE:
        return OFFLINE[name]()
    if not (Path(name).exists() or "/" in name):
        raise ValueError(f"model {name!r} is unknown; use {model_names()}")
    return name


def is_hub_id(name: str) -> bool:
    """Whether `from_pretrained` reads `name` from the hub (or its cache) rather than from a local folder."""
    return name not in OFFLINE and not Path(name).exists()


def not_found(name: str, where: str, err: OSError) -> UsageError:
    """The error for a hub id that `from_pretrained` cannot find: the hub has no such model, or the cache has none
    while the hub is offline."""
    from huggingface_hub import is_offline_mode

    if is_offline_mode():
        problem = "no local folder has this name, and the hub cache holds no such model (the hub is offline)"
        fix = f"use {model_names()}; a hub id must be in the cache, or unset HF_HUB_OFFLINE to download it"
    else:
        reason = str(err).splitlines()[0]
        problem = f"no local folder has this name, and the hub has no such model or cannot be reached ({reason})"
        fix = f"use {model_names()}"
    return UsageError(f"model {name!r}", where, problem, fix)


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer built in code: every printable ASCII character, newline, and the paper's
    two special glyphs, plus an end-of-text token that doubles as padding."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # Hugging Face's package

    chars = ["<|endoftext|>", "<unk>", "\n", *string.printable[:95], "ì", "ſ"]
    vocab = {c: i for i, c in enumerate(dict.fromkeys(chars))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="<unk>",
        model_max_length=2048,
    )


def load_tokenizer(name: str):
    """The tokenizer for model `name`, or `char` for the character tokenizer. Pads with EOS where the model has
    no pad token."""
    if name == CHAR or name == TINY:
        return char_tokenizer()
    if name.startswith("scratch:"):
        return load_tokenizer(ARCHS[check_arch(name.split(":", 1)[1])].tokenizer)
    try:
        tok = AutoTokenizer.from_pretrained(pretrained_path(name))
    except OSError as err:
        if not is_hub_id(name):
            raise
        raise not_found(name, "--model.model / --model.tokenizer", err) from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
