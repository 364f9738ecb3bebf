"""The offline models' shared cache: a GGUF file from an installed package, dequantized once into safetensors.

Each offline model (`longdiv.smollm2`, `longdiv.gemma3`) finds its GGUF file in a pip package and names a folder
under `$LONGDIV_CACHE` (default `~/.cache/longdiv`) after the file's hash, so a new package gets a new folder and a
cache never outlives the file it came from. The first load writes the folder; later loads read only the folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def cache_dir() -> Path:
    return Path(os.environ.get("LONGDIV_CACHE", Path.home() / ".cache" / "longdiv"))


def file_hash(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of the file at `path`."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def dequantized(folder: Path, gguf: Callable[[Path], Path]) -> Path:
    """`folder`, holding a model and its tokenizer in float32 safetensors; made on first use from the GGUF file that
    `gguf(scratch)` gives (it may write the file into the `scratch` folder, which is removed afterwards)."""
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed, so a killed first load never leaves a half-written cache behind.
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        source = gguf(tmp / "gguf")
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        # The weights are plain float32 once dequantized: drop the GGUF marks so the copy saves and loads as such.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp / "model", safe_serialization=True)
        tok.save_pretrained(tmp / "model")
        (tmp / "model").rename(folder)
    except OSError:
        if not (folder / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
