"""Integration with the real offline model: a few training steps lower the loss, and generation runs."""

import pytest
import torch

from longdiv.data.datamodule import DivisionData, collate_eval, collate_train
from longdiv.models.module import DivisionLM, completion_loss


@pytest.mark.slow
def test_smollm2_trains_and_generates():
    torch.manual_seed(0)
    module = DivisionLM(model="smollm2", format="direct", lr=1e-4)
    tok = module.tokenizer
    assert [tok.decode([i]) for i in tok("93", add_special_tokens=False)["input_ids"]] == ["9", "3"]
    data = DivisionData(format="direct", num_demos=4, num_val=1, num_test=2, tokenizer_name="smollm2")
    data.setup()
    batch = collate_train(data.train_examples, tok.pad_token_id)
    optimizer = torch.optim.AdamW(module.model.parameters(), lr=1e-4)
    losses = []
    for _ in range(3):
        loss = completion_loss(module.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    module.eval()
    items = list(enumerate(data.eval_examples["test"]))
    texts = module.generate(**{k: v for k, v in collate_eval(items, tok.pad_token_id).items()
                               if k in ("input_ids", "attention_mask")}, max_new_tokens=6)
    assert len(texts) == 2 and any(t.strip() for t in texts)
    # the batched, left-padded decode writes what transformers' greedy `generate` writes for each prompt alone
    for (_, example), text in zip(items, texts, strict=True):
        alone = module.model.generate(torch.tensor([example.prompt_ids]), max_new_tokens=6, do_sample=False,
                                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        assert text == tok.decode(alone[0, len(example.prompt_ids):], skip_special_tokens=True)
