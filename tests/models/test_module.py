import os
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from longdiv.data.datamodule import DivisionData, collate_eval, collate_train
from longdiv.models.module import DivisionLM, completion_loss
from tests.models.test_gemma3 import needs_gemma


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


def test_embedding_noise_is_neftunes_uniform_noise_drawn_from_the_generator():
    module, data = setup_pair()
    batch = collate_train(data.train_examples[:4], data.tokenizer.pad_token_id)
    args = (module.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    clean = completion_loss(*args)
    noisy = [completion_loss(*args, 5.0, torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert noisy[0] == noisy[1] != noisy[2] and noisy[0] != clean
    torch.testing.assert_close(completion_loss(*args, 1e-6, torch.Generator().manual_seed(1)), clean)
    seen = []  # what the backbone gets: the embeddings plus noise within alpha / sqrt(length * width)
    hook = module.model.base_model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["inputs_embeds"]),
                                                             with_kwargs=True)
    completion_loss(*args, 5.0, torch.Generator().manual_seed(1))
    hook.remove()
    bound = 5.0 / (batch["attention_mask"].sum(1) * seen[0].shape[-1]).sqrt()
    added = seen[0] - module.model.get_input_embeddings()(batch["input_ids"])
    assert (added.abs().amax((1, 2)) <= bound).all() and (added.abs().amax((1, 2)) > bound / 2).all()


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


def test_bf16_decoding_generates_with_a_bf16_copy_and_leaves_the_weights_alone():
    import copy

    import lightning as L

    from longdiv.models.decode import decode

    torch.manual_seed(0)
    module = DivisionLM(model="tiny", format="direct", precision="bf16")
    data = DivisionData(format="direct", num_demos=8, num_val=2, num_test=5, tokenizer_name="tiny")
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.test(module, datamodule=data)
    after = module.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.dtype == torch.float32 for p in module.model.parameters()) and not module._bf16
    bf16 = copy.deepcopy(module.model).to(torch.bfloat16).eval()
    tests = data.eval_examples["test"]
    assert len(module.records) == len(tests)
    for record in module.records:
        example = tests[record["index"]]
        ids = torch.tensor([example.prompt_ids])
        budget = len(example.completion_ids) + 16  # each row's own budget, whatever shares its batch
        row = decode(bf16, ids, torch.ones_like(ids), budget, module.tokenizer.eos_token_id)
        assert record["generated"] == module.tokenizer.batch_decode(row, skip_special_tokens=True)[0]


def test_votes_pick_the_most_given_answer_and_keep_its_first_trace(monkeypatch):
    torch.manual_seed(0)
    module = DivisionLM(model="tiny", format="direct", votes=3)
    data = DivisionData(format="direct", num_demos=8, num_val=2, num_test=4, tokenizer_name="tiny")
    data.setup()
    tests = data.eval_examples["test"]
    right = [e.problem.remainder for e in tests]
    wrong = [r + 1 for r in right]
    scripted = [  # three traces a problem: majority right, majority wrong, one answer among unparsable, none parsed
        [f"= {wrong[0]}\n", f"= {right[0]}\n", f" = {right[0]}\n"],
        [f"= {wrong[1]}\n", f"= {right[1]}\n", f"= {wrong[1]}\n"],
        ["junk", f"= {right[2]}\n", "more junk"],
        ["junk", "junk", "junk"],
    ]
    seen = {}

    def generate(input_ids, attention_mask, max_new_tokens, votes=1, seed=0, context=None, seeds=None):
        seen.update(votes=votes, rows=input_ids.shape[0])
        return [text for row in scripted for text in row]

    monkeypatch.setattr(module, "generate", generate)
    module.records = []  # no trainer and no data module: the batch carries its problems
    batch = collate_eval(list(enumerate(tests)), data.tokenizer.pad_token_id)
    module._eval_step(batch, "test")

    assert seen == {"votes": 3, "rows": 4}
    records = sorted(module.records, key=lambda r: r["index"])
    assert [r["correct"] for r in records] == [True, False, True, False]
    assert [r["generated"] for r in records] == [scripted[0][1], scripted[1][0], scripted[2][1], "junk"]
    assert records[0]["votes"] == [wrong[0], right[0], right[0]] and records[3]["parsed"] is None
    assert module.stage_metrics["test"]["remainder_acc"].compute() == 0.5


def test_sampled_votes_run_end_to_end():
    import lightning as L

    torch.manual_seed(0)
    module = DivisionLM(model="tiny", format="direct", votes=2, temperature=1.0)
    data = DivisionData(format="direct", num_demos=8, num_val=2, num_test=3, tokenizer_name="tiny")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.test(module, datamodule=data)
    assert len(module.records) == 3 and all(len(r["votes"]) == 2 for r in module.records)

    def samples(sample_seed: int) -> list[str]:  # the texts sampled for the test batch with this seed offset
        module.hparams.sample_seed = sample_seed
        module.records = []
        trainer.test(module, datamodule=data, verbose=False)
        return [r["generated"] for r in sorted(module.records, key=lambda r: r["index"])]

    first = samples(0)
    assert samples(0) == first  # the same run samples the same traces again
    assert samples(1_000_000) != first  # another sample_seed draws others (a second stage of votes)


def test_bf16_training_sums_the_copys_gradients_into_the_fp32_weights_and_refreshes_the_copy():
    import copy

    module, data = setup_pair()
    module.compute["train"] = "bf16"  # what setup resolves precision bf16 to on one device
    start = copy.deepcopy(module.model)
    micro = [collate_train(data.train_examples[i : i + 2], data.tokenizer.pad_token_id) for i in (0, 2)]
    optimizer = torch.optim.SGD(module.model.parameters(), lr=0.5)

    def closure():
        return None

    for batch in micro:  # two accumulated micro-batches, as Lightning runs them
        loss = completion_loss(module.trained_model(), batch["input_ids"], batch["attention_mask"], batch["labels"])
        loss.backward()
    assert all(w.grad is None for w in module.model.parameters())
    assert all(c.grad.dtype == torch.bfloat16 for c in module.trained_model().parameters() if c.grad is not None)

    reference = copy.deepcopy(start).to(torch.bfloat16)  # the same passes on a bf16 copy made by hand
    for batch in micro:
        completion_loss(reference, batch["input_ids"], batch["attention_mask"], batch["labels"]).backward()
    module.on_before_optimizer_step(optimizer)
    grads = [w.grad.clone() for w in module.model.parameters()]
    for grad, ref in zip(grads, reference.parameters(), strict=True):
        assert grad.dtype == torch.float32 and torch.equal(grad, ref.grad.float())
    assert all(c.grad is None for c in module.trained_model().parameters())

    module.optimizer_step(0, 0, optimizer, closure)
    for weight, before, grad in zip(module.model.parameters(), start.parameters(), grads, strict=True):
        torch.testing.assert_close(weight.detach(), before.detach() - 0.5 * grad)  # fp32 weights took the update
    for weight, copied in zip(module.model.parameters(), module.trained_model().parameters(), strict=True):
        assert torch.equal(copied.detach(), weight.detach().to(torch.bfloat16))


def test_bf16_training_fits_with_lightning_and_checkpoints_fp32_weights_only(tmp_path):
    import lightning as L

    torch.manual_seed(0)
    module = DivisionLM(model="tiny", precision="bf16")
    data = DivisionData(num_demos=8, num_val=2, num_test=2, tokenizer_name="tiny", batch_size=2)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, accumulate_grad_batches=2, logger=False,
                        enable_progress_bar=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
                        limit_val_batches=0)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer.fit(module, datamodule=data)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    state = torch.load(tmp_path / "last.ckpt", weights_only=False)["state_dict"]
    assert state.keys() == {f"model.{k}" for k in before} and all(v.dtype == torch.float32 for v in state.values())
    assert any(not torch.equal(before[k], state[f"model.{k}"]) for k in before)  # the fp32 weights moved
    for weight, copied in zip(module.model.parameters(), module.trained_model().parameters(), strict=True):
        assert torch.equal(copied.detach(), weight.detach().to(torch.bfloat16))

    bad = L.Trainer(accelerator="cpu", max_steps=1, precision="bf16-mixed", logger=False, enable_progress_bar=False,
                    default_root_dir=tmp_path)
    try:
        bad.fit(DivisionLM(model="tiny", precision="bf16"), datamodule=data)
    except ValueError as err:
        assert "32-true" in str(err)
    else:
        raise AssertionError("bf16 copy training under autocast must be refused")


class Batches(__import__("lightning").Callback):
    """Keeps the training batches a fit ran on."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append({k: v.clone() for k, v in batch.items()})


class StepGradients:
    """The gradients the optimizer stepped with (on the fp32 weights, after any copy's were moved onto them)."""

    def __init__(self):
        self.seen: list[torch.Tensor] = []

    def __call__(self, optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.seen = [p.grad.detach().clone().flatten() for p in params]


def fit_one_step(precision: str, model_precision: str = "auto", gradients: StepGradients | None = None):
    """One optimizer step of two accumulated micro-batches under Lightning, from the same start."""
    import lightning as L

    torch.manual_seed(0)
    module = DivisionLM(model="tiny", precision=model_precision, lr=1e-2, warmup_ratio=0.0)
    start = {k: v.clone() for k, v in module.model.state_dict().items()}
    data = DivisionData(num_demos=8, num_val=2, num_test=2, tokenizer_name="tiny", batch_size=2)
    batches = Batches()

    class Watch(L.Callback):
        def on_train_start(self, trainer, pl_module):
            if gradients is not None:
                trainer.optimizers[0].register_step_post_hook(gradients)  # the closure runs inside step

    trainer = L.Trainer(accelerator="cpu", max_steps=1, accumulate_grad_batches=2, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0, precision=precision, callbacks=[batches, Watch()])
    trainer.fit(module, datamodule=data)
    return module, start, batches.seen


def test_one_accumulated_bf16_step_under_lightning_is_the_hand_computed_update():
    import copy

    module, start, seen = fit_one_step("32-true", "bf16")
    assert module.compute["train"] == "bf16" and len(seen) == 2
    fp32 = DivisionLM(model="tiny").model
    fp32.load_state_dict(start)
    copied = copy.deepcopy(fp32).to(torch.bfloat16)
    for batch in seen:  # Lightning divides each micro-batch's loss by the accumulation
        (completion_loss(copied, batch["input_ids"], batch["attention_mask"], batch["labels"]) / 2).backward()
    for weight, c in zip(fp32.parameters(), copied.parameters(), strict=True):
        weight.grad = None if c.grad is None else c.grad.float()
    decay = [p for p in fp32.parameters() if p.ndim >= 2]
    no_decay = [p for p in fp32.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-2)
    optimizer.step()
    for (name, want), got in zip(fp32.state_dict().items(), module.model.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-7, msg=name)
    assert any(not torch.equal(start[k], v) for k, v in module.model.state_dict().items())


def test_the_bf16_step_stays_near_the_fp32_step():
    bf16_grads, fp32_grads = StepGradients(), StepGradients()
    bf16, start, _ = fit_one_step("32-true", "bf16", bf16_grads)
    fp32, _, _ = fit_one_step("32-true", "fp32", fp32_grads)
    # The gradients themselves, at their scale (AdamW's first step is blind to it): the same accumulated mean.
    got, want = torch.cat(bf16_grads.seen), torch.cat(fp32_grads.seen)
    assert len(got) == len(want) > 0
    assert 0.95 < got.norm() / want.norm() < 1.05 and F.cosine_similarity(got, want, dim=0) > 0.99
    assert fp32.compute["train"] == "fp32"
    # AdamW's first step moves each weight by about lr in the direction of its gradient's sign, so the two agree
    # wherever bf16 rounding leaves a gradient's sign alone: on almost every weight.
    moved = torch.cat([(bf16.model.state_dict()[k] - start[k]).flatten() for k in start])
    reference = torch.cat([(fp32.model.state_dict()[k] - start[k]).flatten() for k in start])
    agree = (torch.sign(moved) == torch.sign(reference)).float().mean()
    assert agree > 0.97, f"bf16 and fp32 updates agree in sign on only {agree:.1%} of the weights"
    assert (moved - reference).norm() / reference.norm() < 0.25


def test_auto_trains_and_decodes_in_fp32_on_a_cpu_without_bf16(monkeypatch):
    from longdiv import hardware

    without = hardware.Machine("cpu", "AMD EPYC 7R13", False)
    monkeypatch.setattr(hardware, "cpu", lambda cpuinfo=None: without)
    module, _, _ = fit_one_step("32-true")
    assert module.machine == without and module.compute == {"train": "fp32", "decode": "fp32"}
    assert module.trained_model() is module.model

    with_bf16 = hardware.Machine("cpu", "AMD EPYC 9R14", True, ("avx512_bf16",))
    monkeypatch.setattr(hardware, "cpu", lambda cpuinfo=None: with_bf16)
    module, _, _ = fit_one_step("32-true")
    assert module.compute == {"train": "bf16", "decode": "bf16"}
    assert next(module.trained_model().parameters()).dtype == torch.bfloat16
    module, _, _ = fit_one_step("bf16-mixed")  # auto leaves a mixed-precision trainer alone for training
    assert module.compute == {"train": "bf16-mixed", "decode": "bf16"} and module.trained_model() is module.model


def test_after_bf16_training_decoding_reuses_the_training_copy_and_equals_a_fresh_cast():
    import copy

    import lightning as L

    from longdiv.models.decode import decode

    module, _, _ = fit_one_step("32-true", "bf16")
    trained = module.trained_model()
    data = DivisionData(num_demos=8, num_val=2, num_test=4, tokenizer_name="tiny", batch_size=2)
    used = []

    class Spy(L.Callback):
        def on_test_batch_start(self, trainer, pl_module, *args):
            used.append(pl_module.decoding_model)

    L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              callbacks=[Spy()]).test(module, datamodule=data)
    assert used and all(m is trained for m in used) and trained.training  # decoded on it, then back to training
    fresh = copy.deepcopy(module.model).to(torch.bfloat16).eval()
    tests = data.eval_examples["test"]
    assert sorted(r["index"] for r in module.records) == list(range(len(tests)))  # every problem, once
    for record in module.records:
        example = tests[record["index"]]
        ids = torch.tensor([example.prompt_ids])
        row = decode(fresh, ids, torch.ones_like(ids), len(example.completion_ids) + 16, module.tokenizer.eos_token_id)
        assert record["generated"] == module.tokenizer.batch_decode(row, skip_special_tokens=True)[0]


def test_a_model_whose_window_is_shorter_than_its_traces_trains_on_windows_and_generates_past_its_window():
    import lightning as L

    from longdiv.models.decode import decode

    torch.manual_seed(0)
    module = DivisionLM(model="tiny", config_overrides={"max_position_embeddings": 128}, precision="fp32")
    # max_length as the CLI links it from the model: the context defaults to the model's window
    data = DivisionData(num_demos=8, num_val=2, num_test=3, tokenizer_name="tiny", max_length=module.window,
                        batch_size=4, eval_batch_size=3)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    assert data.context == 128 and max(map(len, data.demos)) > 128 and len(data.train_examples) > len(data.demos)
    assert trainer.global_step == 3 and any(not torch.equal(v, module.model.state_dict()[k]) for k, v in before.items())
    trainer.test(module, datamodule=data)
    tests = data.eval_examples["test"]
    assert len(module.records) == len(tests)
    eos = module.tokenizer.eos_token_id
    for record in module.records:  # the full continuation, past the window, as the example decoded alone gives it
        example = tests[record["index"]]
        ids = torch.tensor([example.prompt_ids])
        budget = len(example.completion_ids) + 16
        row = decode(module.model, ids, torch.ones_like(ids), budget, eos, context=128)[0]
        assert record["generated"] == module.tokenizer.decode(row, skip_special_tokens=True)
        assert len(row) + len(example.prompt_ids) > 128


def test_position_offsets_shift_the_positions_of_an_absolute_position_model():
    module, data = setup_pair()  # the tiny model is GPT-Neo: learned absolute positions
    batch = collate_train(data.train_examples[:3], data.tokenizer.pad_token_id)
    args = (module.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    offsets = torch.tensor([0, 5, 40])
    positions = torch.arange(batch["input_ids"].shape[1]) + offsets[:, None]
    logits = module.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          position_ids=positions).logits
    want = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1))
    torch.testing.assert_close(completion_loss(*args, offsets=offsets), want)
    torch.testing.assert_close(completion_loss(*args, offsets=torch.zeros(3, dtype=torch.long)), completion_loss(*args))
    assert completion_loss(*args, offsets=offsets) != completion_loss(*args)


def test_training_draws_offsets_within_the_models_positions_and_the_same_ones_on_a_rerun():
    module = DivisionLM(model="tiny", position_offset=10_000)
    ids = torch.zeros(64, 100, dtype=torch.long)
    drawn = module._offsets(ids, torch.Generator().manual_seed(3))
    limit = module.model.config.max_position_embeddings
    assert drawn.min() >= 0 and drawn.max() <= limit - 100 and drawn.unique().numel() > 32
    torch.testing.assert_close(module._offsets(ids, torch.Generator().manual_seed(3)), drawn)
    _, data = setup_pair()  # a training step trains on the offsets drawn for its seed, step and micro-batch
    batch = collate_train(data.train_examples[:2], data.tokenizer.pad_token_id)
    first = module.training_step(batch, 0)
    module._micro = 0
    again = module.training_step(batch, 0)
    seed = int(os.environ.get("PL_GLOBAL_SEED", "0")) * 1_000_003 * 1_000  # step 0, micro-batch 0
    offsets = module._offsets(batch["input_ids"], torch.Generator().manual_seed(seed))
    assert offsets.max() > 0
    want = completion_loss(module.model, batch["input_ids"], batch["attention_mask"], batch["labels"], offsets=offsets)
    torch.testing.assert_close(first, want)
    torch.testing.assert_close(again, first)


def test_a_position_offset_is_refused_for_rotary_positions_which_it_would_not_change():
    overrides = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                 "num_key_value_heads": 1}
    torch.manual_seed(0)
    module = DivisionLM(model="scratch:smollm2-135m", config_overrides=overrides)
    data = DivisionData(num_demos=2, num_val=1, num_test=1, tokenizer_name="smollm2")
    data.setup()
    batch = collate_train(data.train_examples[:1], data.tokenizer.pad_token_id)
    args = (module.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    torch.testing.assert_close(completion_loss(*args, offsets=torch.tensor([300])), completion_loss(*args))
    try:
        DivisionLM(model="scratch:smollm2-135m", config_overrides=overrides, position_offset=300)
    except ValueError as error:
        assert "rotary" in str(error)
    else:
        raise AssertionError("a rotary model took a position offset")


def test_redo_sampling_is_set_up_only_for_a_format_that_strikes_lines():
    fix = DivisionLM(model="tiny", format="subfix", redo_temperature=0.7)
    redo = fix._redo([4, 9])
    assert fix.tokenizer.decode([redo.strike]) == "!" and fix.tokenizer.decode([redo.newline]) == "\n"
    assert redo.temperature == 0.7 and redo.seeds == [4, 9]
    assert DivisionLM(model="tiny", format="subfix")._redo([4]) is None  # greedy throughout by default
    assert DivisionLM(model="tiny", format="subrow", redo_temperature=0.7)._redo([4]) is None  # nothing to redo


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_the_learning_rate_after_warm_up_follows_the_schedule(schedule):
    module = DivisionLM(model="tiny", lr=1e-3, warmup_ratio=0.1, schedule=schedule)
    module.trainer = SimpleNamespace(estimated_stepping_batches=100)
    scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(100):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert rates[0] < rates[5] < rates[9] < 1e-3  # warm-up over the first 10 steps
    assert rates[10] == pytest.approx(1e-3)
    if schedule == "constant":
        assert rates[10:] == pytest.approx([1e-3] * 90)
    else:
        assert rates[55] == pytest.approx(5e-4, rel=0.05) and rates[-1] < 1e-5


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="model.schedule 'linear' is unknown; choose one of cosine, constant"):
        DivisionLM(model="tiny", schedule="linear")


def test_forced_validation_reads_each_reference_once_and_logs_its_loss_and_how_far_greedy_decoding_follows_it():
    import lightning as L

    from longdiv.models.decode import decode

    torch.manual_seed(0)
    module = DivisionLM(model="tiny", precision="fp32", val_probe="forced")
    data = DivisionData(num_demos=8, num_val=5, num_test=2, tokenizer_name="tiny", eval_batch_size=2)
    data.setup()
    examples = data.eval_examples["val"]
    module.eval()
    eos = data.tokenizer.eos_token_id
    # References of 60 tokens that the random model's own greedy trace follows for 0, 3, 10 and 25 tokens, and one
    # wholly its own.
    prompts = collate_eval(list(enumerate(examples)), data.tokenizer.pad_token_id)
    owns = decode(module.model, prompts["input_ids"], prompts["attention_mask"], 60, eos)
    for follow, own, example in zip((0, 3, 10, 25, None), owns, examples, strict=True):
        example.completion_ids = own if follow is None else own[:follow] + example.completion_ids[follow:60]
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    logged = trainer.validate(module, datamodule=data, verbose=False)[0]
    assert set(logged) == {"val/trace_exact", "val/trace_right", "val/loss"}
    assert logged["val/trace_exact"] == pytest.approx(0.2)  # the reference that is the model's own trace
    shares = []
    for written, example in zip(decode(module.model, prompts["input_ids"], prompts["attention_mask"], 60, eos),
                                examples, strict=True):  # the share of each reference before greedy decoding leaves it
        same = next((i for i, (a, b) in enumerate(zip(written, example.completion_ids)) if a != b), len(written))
        shares.append(same / len(example.completion_ids))
    assert shares[0] < shares[1] < shares[2] < shares[3] < shares[4] == 1.0
    assert logged["val/trace_right"] == pytest.approx(sum(shares) / len(shares))
    batch = collate_train(examples, data.tokenizer.pad_token_id)
    with torch.no_grad():  # the mean cross-entropy a completion token, as training computes it
        loss = completion_loss(module.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert logged["val/loss"] == pytest.approx(loss.item(), rel=1e-4)


def test_an_unknown_validation_probe_is_refused():
    with pytest.raises(ValueError, match="model.val_probe 'teacher' is unknown; choose one of decode, forced"):
        DivisionLM(model="tiny", val_probe="teacher")


@pytest.mark.parametrize("name", ["smollm2", "tiny", pytest.param("gemma3-270m", marks=needs_gemma)])
def test_the_forced_probe_places_each_wrong_token_where_its_text_starts(name):
    from longdiv.data.formats import get_format
    from longdiv.data.problems import Problem
    from longdiv.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(name)
    for fmt in ("recchia-w", "subrow"):
        text = get_format(fmt).render(Problem.from_numbers(537086, 17))[1]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        at = [0, 1, len(ids) // 2, len(ids) - 1]
        starts = DivisionLM._char_starts(SimpleNamespace(tokenizer=tokenizer), ids, at)
        assert starts == [len(tokenizer.decode(ids[:i], clean_up_tokenization_spaces=False)) for i in at]


def test_compiled_training_computes_what_eager_training_computes_and_resumes_bit_exactly(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch._dynamo.utils import counters

    class Losses(L.Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen.append(outputs["loss"].detach())

    def fit(compiled: bool, *callbacks, ckpt_path=None):
        module, data = setup_pair()  # the same init and demonstrations, in padded micro-batches of several lengths
        module.hparams.compile, module.hparams.precision, data.hparams.batch_size = compiled, "fp32", 3
        record = Losses()
        trainer = L.Trainer(max_steps=3, accumulate_grad_batches=2, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, limit_val_batches=0, precision="32-true",
                            enable_checkpointing=bool(callbacks), callbacks=[record, *callbacks])
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        assert ("backbone" in module._compiled) == compiled  # what the training steps ran
        return module, data, torch.stack(record.seen)

    graphs = counters["stats"]["unique_graphs"]
    _, _, eager = fit(False)
    assert counters["stats"]["unique_graphs"] == graphs
    module, data, compiled = fit(True, ModelCheckpoint(tmp_path, "{step}", every_n_train_steps=2, save_top_k=-1))
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo compiled it
    assert len(compiled) == len(eager) >= 5 and len(set(compiled.tolist())) == len(compiled)
    torch.testing.assert_close(compiled, eager, rtol=1e-3, atol=0)
    resumed = fit(True, ckpt_path=tmp_path / "step=2.ckpt")[0]  # mid-epoch
    for key, value in module.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    # One pass's gradients, through the backbone the fit compiled and eagerly, on the weights the fit left: a padded
    # batch, and one of a single demonstration (no mask).
    for rows in (data.train_examples[:3], data.train_examples[3:4]):
        batch = collate_train(rows, data.tokenizer.pad_token_id)
        grads = []
        for backbone in (None, module.trained_backbone()):
            module.model.zero_grad()
            completion_loss(module.model, batch["input_ids"], batch["attention_mask"], batch["labels"],
                            backbone=backbone).backward()
            grads.append([w.grad.clone() for w in module.model.parameters()])
        for eager_grad, compiled_grad in zip(*grads, strict=True):
            torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-6)


def test_compile_refuses_fsdp_in_one_line():
    from lightning.pytorch.strategies import FSDPStrategy

    module, _ = setup_pair()
    module.hparams.compile = True
    strategy = FSDPStrategy(parallel_devices=[torch.device("cpu")] * 2)
    module.trainer = SimpleNamespace(strategy=strategy, precision="32-true", world_size=2)
    with pytest.raises(ValueError, match="model.compile does not train under FSDP"):
        module.setup("fit")
