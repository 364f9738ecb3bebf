"""LoRA adapters: only they train, checkpoints hold them, and export folds them into plain weights."""

import lightning as L
import torch
from transformers import AutoModelForCausalLM

from longdiv import identity
from longdiv.cli import main
from longdiv.data.datamodule import DivisionData, collate_train
from longdiv.export import export
from longdiv.models.module import DivisionLM, completion_loss


def test_only_the_adapters_train_and_they_start_as_the_identity():
    torch.manual_seed(0)
    plain = DivisionLM(model="tiny")
    torch.manual_seed(0)  # the same random init underneath the adapters
    adapted = DivisionLM(model="tiny", lora_rank=4)
    data = DivisionData(num_demos=4, num_val=1, num_test=1, tokenizer_name="tiny")
    data.setup()
    batch = collate_train(data.train_examples, data.tokenizer.pad_token_id)
    args = (batch["input_ids"], batch["attention_mask"], batch["labels"])
    # peft starts B at zero: before training the adapted model computes what the plain one does
    torch.testing.assert_close(completion_loss(adapted.model, *args), completion_loss(plain.model, *args))
    completion_loss(adapted.model, *args).backward()
    trained = {n for n, p in adapted.model.named_parameters() if p.grad is not None}
    assert trained and all("lora_" in n for n in trained)


def test_training_moves_the_adapters_and_leaves_the_pretrained_weights_as_they_were():
    torch.manual_seed(0)
    module = DivisionLM(model="tiny", lora_rank=4, lr=0.01)
    data = DivisionData(num_demos=8, num_val=1, num_test=1, batch_size=4, tokenizer_name="tiny")
    before = {n: p.detach().clone() for n, p in module.model.named_parameters()}
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, data)
    after = dict(module.model.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert moved and all("lora_" in n for n in moved)
    assert any("lora_B" in n for n in moved)


FIT = ["fit", "--config", "configs/tiny.yaml", "--model.lr=0.01", "--data.num_demos=8", "--data.batch_size=4",
       "--data.num_val=2", "--data.num_test=2", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]


def test_a_lora_fit_saves_its_adapters_and_exports_merged_weights(tmp_path):
    main([*FIT, "--model.lora_rank=4", "--trainer.max_steps=4", f"--runs_dir={tmp_path}"])
    (ckpt,) = tmp_path.glob("*/checkpoints/last.ckpt")
    weights = torch.load(ckpt, weights_only=True, map_location="cpu")["state_dict"]
    adapters = {k: v for k, v in weights.items() if "lora_B" in k}
    assert adapters and any(v.abs().sum() > 0 for v in adapters.values())  # B moved away from zero

    module, _ = identity.load(ckpt)
    module.eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        expected = module.model(input_ids=ids).logits
    out = export(ckpt, tmp_path / "exported")
    exported = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in name for name, _ in exported.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(exported(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-4)


def test_a_fit_from_a_lora_checkpoints_weights_keeps_its_adapters(tmp_path):
    first = main([*FIT, "--model.lora_rank=4", "--trainer.max_steps=2", f"--runs_dir={tmp_path / 'a'}"])
    ckpt = first / "checkpoints" / "last.ckpt"
    # lr 0: the step taken leaves the loaded weights, adapters included, as they were
    run = main([*FIT, "--init_from", str(ckpt), "--model.lr=0", "--trainer.max_steps=1",
                f"--runs_dir={tmp_path / 'b'}"])
    old, new = (torch.load(p, weights_only=True, map_location="cpu")["state_dict"]
                for p in (ckpt, run / "checkpoints" / "last.ckpt"))
    assert new.keys() == old.keys() and any("lora_B" in k for k in new)
    assert all(torch.equal(new[k], old[k]) for k in old)
