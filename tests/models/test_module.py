import torch
import torch.nn.functional as F

from longdiv.data.datamodule import DivisionData, collate_eval, collate_train
from longdiv.models.module import DivisionLM, completion_loss


def setup_pair():
    torch.manual_seed(0)
    module = DivisionLM(model="tiny")
    data = DivisionData(num_demos=8, num_val=2, num_test=5, tokenizer_name="tiny")
    data.setup()
    return module, data


def test_lean_loss_equals_plain_loss():
    module, data = setup_pair()
    batch = collate_train(data.train_examples[:4], data.tokenizer.pad_token_id)
    lean = completion_loss(module.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    logits = module.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    plain = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1))
    torch.testing.assert_close(lean, plain)


def test_batched_generation_equals_one_by_one():
    module, data = setup_pair()
    module.eval()
    items = list(enumerate(data.eval_examples["test"]))
    batch = collate_eval(items, data.tokenizer.pad_token_id)
    together = module.generate(batch["input_ids"], batch["attention_mask"], 24)
    alone = [module.generate(torch.tensor([e.prompt_ids]), torch.ones(1, len(e.prompt_ids), dtype=torch.long), 24)[0]
             for _, e in items]
    assert together == alone and any(together)


def test_nan_loss_stops_with_advice():
    module, data = setup_pair()
    batch = collate_train(data.train_examples[:2], data.tokenizer.pad_token_id)
    with torch.no_grad():
        module.model.get_output_embeddings().weight.fill_(float("nan"))
    try:
        module.training_step(batch, 0)
    except FloatingPointError as err:
        assert "at step 0" in str(err) and "lower model.lr" in str(err)
    else:
        raise AssertionError("a NaN loss must stop training")
