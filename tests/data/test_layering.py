"""What each room of the data layer may import: run in a fresh interpreter, so nothing imported before counts."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return set(out.split())


def test_the_verdicts_import_no_format():
    assert not any(m.startswith("longdiv.data.formats") for m in modules_after("import longdiv.data.verify"))


@pytest.mark.parametrize("module", ["longdiv.data.formats", "longdiv.data.verify", "longdiv.data.scoring",
                                    "longdiv.data.windows"])
def test_formats_verdicts_and_scoring_import_no_torch(module):
    loaded = modules_after(f"import {module}")
    assert module in loaded and "torch" not in loaded


def test_the_data_module_imports_nothing_from_the_models():
    loaded = modules_after("import longdiv.data.datamodule")
    assert "longdiv.data.datamodule" in loaded and not any(m.startswith("longdiv.models") for m in loaded)
