"""Nothing runs that the user did not write: no remote model code, no code inside a checkpoint."""

import json
from pathlib import Path

import pytest
import torch

from longdiv.models import loading
from tests import cli_process


class Payload:
    """Unpickling this would create `marker`, as a hostile checkpoint could run any command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_a_checkpoint_holding_code_is_refused(tmp_path):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"model": "tiny", "x": Payload(marker)}}, evil)
    proc = cli_process.run(
        "test", "--model.model=tiny", "--data.format=direct", "--data.num_demos=4", "--data.train_file=null",
        "--data.val_file=null", "--data.num_test=2", "--trainer.logger=false", "--trainer.accelerator=cpu",
        f"--runs_dir={tmp_path / 'runs'}", "--ckpt_path", str(evil),
    )
    assert proc.returncode != 0 and not marker.exists()
    assert f"ckpt_path {evil}: refused, loading it would run code" in proc.stderr
    assert "builtins.open" in proc.stderr or "io.open" in proc.stderr  # names what it would have called


def test_models_never_run_code_shipped_with_them(tmp_path):
    marker, folder = tmp_path / "pwned", tmp_path / "model"
    folder.mkdir()
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w')\n")
    config = {"model_type": "evil", "architectures": ["EvilModel"],
              "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel",
                           "AutoTokenizer": ["evil.EvilTokenizer", None]}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_config.json").write_text(json.dumps({"auto_map": config["auto_map"]}))
    with pytest.raises(Exception, match=r"trust_remote_code"):
        loading.load(str(folder))
    with pytest.raises(Exception, match=r"trust_remote_code"):
        loading.load_model(str(folder))
    assert not marker.exists()
    source = "".join(p.read_text() for p in Path(loading.__file__).parent.parent.rglob("*.py"))
    assert "trust_remote_code=True" not in source
