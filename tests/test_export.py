"""`python -m longdiv export`: a Hugging Face folder that reloads with the Auto classes and gives the same logits."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from longdiv import export as export_module
from longdiv.cli import main
from longdiv.export import export
from longdiv.export import main as export_main
from longdiv.models.module import DivisionLM
from tests import cli_process


def test_export_reloads_with_the_same_logits(tmp_path):
    main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_epochs=1", "--data.num_demos=8", "--data.num_test=3",
          "--data.format=direct", "--num_samples=0", f"--runs_dir={tmp_path / 'runs'}"])
    (run,) = (tmp_path / "runs").iterdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    assert export_main(["--ckpt_path", str(ckpt), "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file()

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    module = DivisionLM.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    prompt = "What is the remainder when 1234 is divided by 7?\n"
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert ids.tolist() == module.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].tolist()
    assert tok.decode(ids[0]) == prompt
    with torch.no_grad():
        assert torch.equal(model(ids).logits, module.model(ids).logits)
    assert model.config.eos_token_id == tok.eos_token_id < model.config.vocab_size

    record = json.loads((run / "run.json").read_text())
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "| format | `direct` |" in card and "| demonstrations (num_demos) | 8 |" in card
    assert f"| data hash | `{record['data_hash']}` |" in card
    assert f"({record['correct']}/{record['n_eval']})" in card and "test accuracy" in card
    assert str(tmp_path) not in card and "wandb" not in card.lower() and "key" not in card.lower()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of one training step of the tiny model, untested."""
    runs_dir = tmp_path_factory.mktemp("runs")
    run = main(["fit", "--config", "configs/tiny.yaml", "--trainer.max_steps=1", "--data.num_demos=4",
                "--data.num_val=2", "--data.num_test=2", "--test_after_fit=false", "--num_samples=0",
                f"--runs_dir={runs_dir}"])
    return run / "checkpoints" / "last.ckpt"


def test_export_refuses_a_folder_that_holds_files_unless_told_to_overwrite(checkpoint, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    proc = cli_process.run("export", "--ckpt_path", str(checkpoint), "--out", str(out))
    assert proc.returncode != 0 and sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert proc.stderr.strip().splitlines() == [
        (f"error: export folder (--out {out}): is not empty; pass --overwrite to replace an earlier export there, "
         "or another --out")
    ]
    # --overwrite replaces only an earlier export: never files it did not write
    with pytest.raises(ValueError, match=r"is not an earlier export \(it holds mine.txt\)"):
        export(checkpoint, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    export(checkpoint, tmp_path / "earlier")
    (tmp_path / "earlier" / "README.md").write_text("an old card")
    export(checkpoint, tmp_path / "earlier", overwrite=True)
    assert "an old card" not in (tmp_path / "earlier" / "README.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "hf"]  # no temporary folder left beside it


def test_overwrite_never_replaces_the_folder_that_holds_the_checkpoint(checkpoint, tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    ckpt = run / "sub" / "last.ckpt"
    ckpt.write_bytes(checkpoint.read_bytes())
    (run / "notes.txt").write_text("mine")
    (run / export_module.SETTINGS).write_text("{}")  # even beside what looks like an export's settings
    proc = cli_process.run("export", "--ckpt_path", str(ckpt), "--out", str(run), "--overwrite")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"holds the checkpoint exported ({ckpt})" in proc.stderr
    assert ckpt.read_bytes() == checkpoint.read_bytes() and (run / "notes.txt").read_text() == "mine"


def test_an_export_that_fails_midway_leaves_no_half_written_folder(checkpoint, tmp_path, monkeypatch):
    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "model_card", fail)  # after the weights and tokenizer are written
    with pytest.raises(OSError, match="disk full"):
        export(checkpoint, tmp_path / "new")
    assert not any(tmp_path.iterdir())
    monkeypatch.undo()
    export(checkpoint, tmp_path / "old")  # an earlier export, then a failed one over it
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    monkeypatch.setattr(export_module, "model_card", fail)
    with pytest.raises(OSError, match="disk full"):
        export(checkpoint, tmp_path / "old", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()} == before
