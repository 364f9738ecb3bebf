"""`python -m longdiv export`: a Hugging Face folder that reloads with the Auto classes and gives the same logits."""

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from longdiv.cli import main
from longdiv.export import main as export_main
from longdiv.models.module import DivisionLM


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
