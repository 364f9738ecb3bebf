"""The LightningModule: a causal LM trained on demonstrations and evaluated by generating and parsing."""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
from functools import partial

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MeanMetric, SumMetric

from longdiv import hardware
from longdiv.data.formats import get_format
from longdiv.data.scoring import score
from longdiv.data.verify import KINDS
from longdiv.models import loading, lora
from longdiv.models.decode import Redo, decode, forced

SCHEDULES = ("cosine", "constant")
PROBES = ("decode", "forced")


def completion_loss(model, input_ids, attention_mask, labels, noise: float = 0.0,
                    generator: torch.Generator | None = None, vocab: torch.Tensor | None = None,
                    offsets: torch.Tensor | None = None, backbone=None) -> torch.Tensor:
    """Mean next-token cross-entropy over completion tokens only.

    The backbone runs on every position, but the vocabulary projection (49K columns for SmolLM2) runs only where a
    label exists, so no logits are ever made for prompt or pad positions. With `vocab` (sorted token ids that hold
    every label), it runs for those tokens alone: a softmax over the tokens a format can write. With `noise`
    (NEFTune's alpha, Jain et al. 2023), the input embeddings get uniform noise of scale
    noise / sqrt(length * width), drawn from `generator`. With `offsets` (one per row), row i's positions run from
    offsets[i] rather than 0. With `backbone` (the model's `base_model` compiled), the hidden states come from it.
    """
    embeds = model.get_input_embeddings()(input_ids)
    if noise:
        scale = noise / (attention_mask.sum(1, keepdim=True) * embeds.shape[-1]).sqrt()
        draw = torch.rand(embeds.shape, generator=generator, device=embeds.device, dtype=torch.float32)
        embeds = embeds + ((2 * draw - 1) * scale[..., None]).to(embeds.dtype)
    positions = None
    if offsets is not None:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device) + offsets.to(input_ids.device)[:, None]
    if backbone is not None and bool(attention_mask.all()):
        # Without padding no mask is needed; the library drops an all-true one itself when eager, but a compiled
        # graph keeps it and attends on a slower path than the causal kernel (docs/speed.md, "The paper's format").
        attention_mask = None
    backbone = model.base_model if backbone is None else backbone
    hidden = backbone(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    head, targets = model.get_output_embeddings(), targets[keep]
    if vocab is None:
        return F.cross_entropy(head(hidden[:, :-1][keep]).float(), targets)
    columns = torch.searchsorted(vocab, targets).clamp(max=len(vocab) - 1)
    if not torch.equal(vocab[columns], targets):  # a label the restricted layer has no row for
        raise ValueError("model.restrict_vocab: a completion holds a token outside the format's alphabet or "
                         "lexicon; train with restrict_vocab false")
    logits = F.linear(hidden[:, :-1][keep], head.weight[vocab], None if head.bias is None else head.bias[vocab])
    return F.cross_entropy(logits.float(), columns)


def output_tokens(fmt, tokenizer) -> torch.Tensor:
    """The sorted token ids that format `fmt` can write, and EOS: one per character of its alphabet, or the tokens of
    its lexicon (`--model.restrict_vocab`)."""
    if fmt.alphabet is None and fmt.lexicon is None:
        raise ValueError(f"model.restrict_vocab needs a format that writes a fixed set of characters or words; "
                         f"{fmt.name} does not (use a sub* or recchia-* format, or restrict_vocab false)")
    ids = {tokenizer.eos_token_id}
    if fmt.alphabet is None:
        return torch.tensor(sorted(ids | set(tokenizer(fmt.lexicon, add_special_tokens=False)["input_ids"])))
    for char in fmt.alphabet:
        token = tokenizer(char, add_special_tokens=False)["input_ids"]
        if len(token) != 1:
            raise ValueError(f"model.restrict_vocab: the tokenizer has no single token for {char!r}")
        ids.add(token[0])
    return torch.tensor(sorted(ids))


class DivisionLM(L.LightningModule):
    def __init__(
        self,
        model: str = "tiny",
        tokenizer: str | None = None,
        config_overrides: dict | None = None,
        format: str = "subrow",
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.05,
        schedule: str = "cosine",
        precision: str = "auto",
        votes: int = 1,
        temperature: float = 0.7,
        sample_seed: int = 0,
        embedding_noise: float = 0.0,
        lora_rank: int = 0,
        restrict_vocab: bool = False,
        position_offset: int = 0,
        redo_temperature: float = 0.0,
        val_probe: str = "decode",
        compile: bool = False,
    ):
        """A causal LM fine-tuned on division demonstrations.

        Args:
            model: Model name: `smollm2` (offline), `tiny`, `scratch:<arch>`, or a hub id / local folder.
            tokenizer: Tokenizer name when it differs from the model's (`char` for random-init tests).
            config_overrides: Architecture changes for random-init models, e.g. `{hidden_size: 32}`.
            format: Demonstration format used to parse generations; linked from the data's format by the CLI.
            lr: Peak AdamW learning rate.
            weight_decay: AdamW weight decay.
            warmup_ratio: Fraction of the optimizer steps spent warming the learning rate up from 0.
            schedule: The learning rate after the warm-up: `cosine` decays it to 0 at the last step; `constant`
                keeps it at `lr`, so that a fit can go on past its planned end (a learning curve trained until
                it stops improving) and its curve is not flattened by the schedule.
            precision: What training and generation compute in: `bf16`, `fp32`, or `auto` (bf16 where the machine
                multiplies bf16 natively: a GPU, or a CPU with AVX-512 BF16 or AMX; fp32 elsewhere, where bf16 is
                emulated and many times slower). bf16 trains on a bf16 copy of the weights, cast once per optimizer
                step rather than per micro-batch as autocast does: the copy's gradients become the fp32 weights'
                at the optimizer step, and the optimizer and checkpoints keep fp32. That needs
                `--trainer.precision 32-true` on one device; elsewhere (DDP, FSDP, bf16-mixed) `auto` trains as the
                trainer says. Generation in bf16 runs on a bf16 copy made at each evaluation's start (not under
                FSDP). The choice is printed when a run starts and kept in `compute`.
            votes: Traces per problem at evaluation. 1: one greedy trace. More: that many traces sampled at
                `temperature`, and the answer is the remainder most of them give (a tie goes to the earlier sample);
                the trace kept and verified is the first that gives it. Costs `votes` times the decoding.
            temperature: Sampling temperature when `votes` > 1.
            sample_seed: Added to the seed of each evaluation batch's samples (the batch's first problem's index), so
                that a second decode of the same problems draws other samples.
            embedding_noise: NEFTune's alpha: uniform noise on the input embeddings in training, of scale
                alpha / sqrt(sequence length * width); 0 turns it off. Drawn from the training seed, the step and the
                micro-batch, so a resumed run draws the same noise.
            lora_rank: Train rank-`lora_rank` LoRA adapters on every linear layer of the backbone, with the
                pretrained weights frozen (peft); 0 trains every weight.
            restrict_vocab: Compute the output layer only for the tokens the format can write (one per character of
                its `alphabet`, or those of its `lexicon`) and EOS, in training (a softmax over those) and in
                generation (which then writes only those): far fewer rows than a 49K or 262K vocabulary. Needs a
                format with an alphabet (`sub*`) or a lexicon (`recchia-*`).
            redo_temperature: With a format whose model strikes out a line it judged wrong (`subfix`'s `!`), the
                line written after the strike is sampled at this temperature (from a generator seeded by the
                problem) rather than greedy, so that the slip is not written again the same way; 0 keeps greedy
                decoding throughout. The check is the model's own: only its strike starts a sample.
            position_offset: In training, each demonstration's positions start at an offset drawn uniformly from
                0..`position_offset` (kept within the model's `max_position_embeddings`), so that positions past
                the longest demonstration are seen too; generation starts at 0. Drawn like `embedding_noise`, so a
                resumed run draws the same offsets. 0 turns it off. Only for models with absolute positions
                (GPT-Neo): rotary positions (SmolLM2, Gemma) depend only on distances, which an offset leaves alone.
            val_probe: What validation measures. `decode`: it writes and scores each problem's trace, as testing
                does (`val/remainder_acc` and the error kinds). `forced`: one forward pass over each problem's
                reference trace, in the windows generation slides through (`longdiv.models.decode.forced`), far
                cheaper on long traces: `val/trace_exact`, the share of problems whose whole trace is the greedy
                choice at every token (so what greedy decoding writes, up to rounding, and a lower bound on its
                remainder accuracy); `val/trace_right`, the mean share of a trace before its first token that is
                not; `val/loss`, the mean cross-entropy a token.
            compile: Run training's forward and backward passes through `torch.compile` (the backbone, with dynamic
                sequence lengths), which fuses the elementwise work between the matrix products (norms, rotary
                positions, activations, residual adds); on a CPU that work is most of a step. Compiling costs
                minutes at a fit's first step (again when it resumes); evaluation stays eager. Not with FSDP.
        """
        super().__init__()
        self.save_hyperparameters()
        bad = [f"model.{name} is {value}" for name, value in (("lr", lr), ("weight_decay", weight_decay)) if value < 0]
        if bad:  # before the model loads
            raise ValueError(f"{' and '.join(bad)}; pass a value >= 0")
        if schedule not in SCHEDULES:
            raise ValueError(f"model.schedule {schedule!r} is unknown; choose one of {', '.join(SCHEDULES)}")
        if val_probe not in PROBES:
            raise ValueError(f"model.val_probe {val_probe!r} is unknown; choose one of {', '.join(PROBES)}")
        self.format = get_format(format)
        self.model, self.tokenizer = loading.load(model, tokenizer, config_overrides)
        if position_offset and any(name.endswith("rotary_emb") for name, _ in self.model.named_modules()):
            raise ValueError(f"model.position_offset shifts absolute positions, and {model} has rotary ones, which "
                             "depend only on distances: the offset would change nothing (use 0)")
        if lora_rank:
            self.model = lora.add(self.model, lora_rank)
        self.model.train()  # from_pretrained returns eval mode; Lightning switches modes from here on
        self.stage_metrics = torch.nn.ModuleDict({"val": self._metrics(val_probe), "test": self._metrics("decode")})
        self.records: list[dict] = []
        # The records of an interrupted test of the same weights and settings, by problem index (RunRecord reads
        # them back): a test batch whose problems all have one is not decoded again.
        self.done: dict[int, dict] = {}
        hardware.check(precision)  # an unknown name fails here, not in setup
        # What setup resolved `precision` to: "bf16" (a bf16 copy) or the trainer's own precision, per phase.
        self.compute = {"train": "fp32", "decode": "fp32"}
        self.machine: hardware.Machine | None = None
        self._bf16: dict[str, torch.nn.Module] = {}  # the bf16 copy while an evaluation decodes in bf16
        self._train_copy: dict[str, torch.nn.Module] = {}  # training's bf16 copy (not in checkpoints)
        self._compiled: dict[str, torch.nn.Module] = {}  # with `compile`: training's compiled backbone
        self._micro = 0  # micro-batches since the last optimizer step
        self.output_vocab: torch.Tensor | None = None  # with restrict_vocab: the token ids the output layer computes
        if restrict_vocab:
            self.output_vocab = output_tokens(self.format, self.tokenizer)

    @staticmethod
    def _metrics(probe: str) -> torch.nn.ModuleDict:
        # Mean metrics keep (sum, count) and all-reduce both by sum, so accuracy over several processes equals
        # the single-process figure exactly.
        if probe == "forced":
            return torch.nn.ModuleDict({"trace_exact": MeanMetric(), "trace_right": MeanMetric(),
                                        "loss": MeanMetric()})
        metrics = {"remainder_acc": MeanMetric(), "parse_fail_rate": MeanMetric()}
        metrics |= {f"err_{kind}": SumMetric() for kind in KINDS}
        return torch.nn.ModuleDict(metrics)

    def setup(self, stage: str) -> None:
        trainer = self.trainer
        self.machine = hardware.machine(trainer.strategy.root_device)
        wanted = hardware.resolve(self.hparams.precision, self.machine)
        precision, devices = str(trainer.precision), trainer.world_size
        own = {"32-true": "fp32"}.get(precision, precision)
        copy_ok = precision == "32-true" and devices == 1
        if stage == "fit" and wanted == "bf16" and not copy_ok and self.hparams.precision == "bf16":
            raise ValueError(f"model.precision bf16 trains on a bf16 copy, which needs --trainer.precision 32-true "
                             f"on one device, not {precision} on {devices}; use model.precision auto to train as "
                             "the trainer says")
        if stage == "fit" and self.hparams.compile and isinstance(trainer.strategy, FSDPStrategy):
            raise ValueError("model.compile does not train under FSDP; use compile false, or DDP")
        self.compute = {
            "train": "bf16" if wanted == "bf16" and copy_ok else own,
            "decode": "bf16" if wanted == "bf16" and not isinstance(trainer.strategy, FSDPStrategy) else own,
        }
        features = ", ".join(self.machine.bf16_features) or ("native" if self.machine.fast_bf16 else "none")
        name = ", ".join(filter(None, (self.machine.model, self.machine.cpu_id)))
        rank_zero_info(f"precision {self.hparams.precision}: training in {self.compute['train']}, decoding in "
                       f"{self.compute['decode']} ({self.machine.device}: {name}; fast bf16: {features})")

    def trained_model(self) -> torch.nn.Module:
        """The model that training's forward and backward passes run on: the weights, or their bf16 copy."""
        if self.compute["train"] != "bf16":
            return self.model
        if "model" not in self._train_copy:
            self._train_copy["model"] = copy.deepcopy(self.model).to(torch.bfloat16).train()
        return self._train_copy["model"]

    def trained_backbone(self) -> torch.nn.Module | None:
        """With `compile`: the trained model's backbone under `torch.compile` (sharing its weights), else None."""
        if not self.hparams.compile:
            return None
        if "backbone" not in self._compiled:
            self._compiled["backbone"] = torch.compile(self.trained_model().base_model, dynamic=True)
        return self._compiled["backbone"]

    def _copied_pairs(self):
        """(fp32 weight, its bf16 copy) pairs; none before the copy exists or when training is not in bf16."""
        if "model" not in self._train_copy:
            return []
        pairs = zip(self.model.parameters(), self._train_copy["model"].parameters(), strict=True)
        return [(weight, copied) for weight, copied in pairs if weight.requires_grad]

    def on_before_optimizer_step(self, optimizer) -> None:
        for weight, copied in self._copied_pairs():  # the copy's gradients, summed over the micro-batches
            weight.grad = None if copied.grad is None else copied.grad.float()
            copied.grad = None

    def optimizer_step(self, *args, **kwargs) -> None:
        self._micro = 0
        super().optimizer_step(*args, **kwargs)
        with torch.no_grad():
            for weight, copied in self._copied_pairs():
                copied.copy_(weight)

    def _offsets(self, input_ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One position offset per row, uniform in 0..position_offset and within the model's positions."""
        most = self.hparams.position_offset
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None:
            most = min(most, limit - input_ids.shape[1])
        if most < 0:
            raise ValueError(f"a training sequence of {input_ids.shape[1]} tokens is longer than the model's "
                             f"{limit} positions")
        return torch.randint(most + 1, (input_ids.shape[0],), generator=generator, device=input_ids.device)

    def training_step(self, batch, batch_idx):
        noise, generator, offsets = self.hparams.embedding_noise, None, None
        if noise or self.hparams.position_offset:
            # seeded by the training seed, the optimizer step and the micro-batch within it
            seed = (int(os.environ.get("PL_GLOBAL_SEED", "0")) * 1_000_003 + self.global_step) * 1_000 + self._micro
            generator = torch.Generator(batch["input_ids"].device).manual_seed(seed)
        if self.hparams.position_offset:
            offsets = self._offsets(batch["input_ids"], generator)
        self._micro += 1
        vocab = None if self.output_vocab is None else self.output_vocab.to(batch["input_ids"].device)
        loss = completion_loss(self.trained_model(), batch["input_ids"], batch["attention_mask"], batch["labels"],
                               noise, generator, vocab, offsets, self.trained_backbone())
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at step {self.global_step} (epoch {self.current_epoch}); lower "
                "model.lr, try fp32 (--trainer.precision 32-true), or resume from the last checkpoint"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    @property
    def decoding_model(self) -> torch.nn.Module:
        """The weights generation runs on: the bf16 copy while an evaluation decodes in bf16, else the model."""
        return self._bf16.get("decoder", self.model)

    @property
    def window(self) -> int | None:
        """The model's own context window in tokens (its position embeddings), or None where it states none."""
        return getattr(self.model.config.get_text_config(), "max_position_embeddings", None)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, max_new_tokens: int | torch.Tensor, votes: int = 1,
                 seed: int = 0, context: int | None = None, seeds: list[int] | None = None) -> list[str]:
        """Batched, with the KV cache; the decoded continuation of each row up to its EOS or its budget
        (`max_new_tokens`, one or one per row): one greedy one per row, or (`votes` > 1) that many sampled ones per
        row, a row's together, drawn from a generator seeded with `seed`. With `context` (at most the model's
        window), a row that reaches it goes on in a sliding window (`longdiv.models.decode`), so its budget may
        pass the context; without it, the budget is cut to what fits the model's window. `seeds` (one per row;
        `seed` + row by default) seed the lines sampled after a strike (`redo_temperature`)."""
        budgets = torch.as_tensor(max_new_tokens, device=input_ids.device).expand(input_ids.shape[0])
        if context and self.window and context > self.window:
            raise ValueError(f"context is {context} but the model's window is {self.window}; pass a smaller context")
        if context is None and self.window:
            budgets = budgets.clamp(min=1, max=max(1, self.window - input_ids.shape[1]))
        model = self.decoding_model
        sample = {}
        if votes > 1:
            input_ids, attention_mask = (input_ids.repeat_interleave(votes, 0),
                                         attention_mask.repeat_interleave(votes, 0))
            budgets = budgets.repeat_interleave(votes, 0)
            sample = {"temperature": self.hparams.temperature,
                      "generator": torch.Generator(device=input_ids.device).manual_seed(seed)}
        with torch.autocast(input_ids.device.type, enabled=False) if self._bf16 else contextlib.nullcontext():
            vocab = None if self.output_vocab is None else self.output_vocab.to(input_ids.device)
            rows = decode(model, input_ids, attention_mask, budgets, self.tokenizer.eos_token_id, context=context,
                          vocab=vocab, redo=self._redo(seeds or [seed + row for row in range(len(budgets))]),
                          **sample)
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)

    def _redo(self, seeds: list[int]) -> Redo | None:
        """How lines written after a strike are sampled; None when they are not (greedy throughout)."""
        strike = self.format.strike
        if not (self.hparams.redo_temperature > 0 and strike):
            return None
        strike_id, newline_id = (self.tokenizer(char, add_special_tokens=False)["input_ids"] for char in (strike, "\n"))
        if len(strike_id) != 1 or len(newline_id) != 1:
            raise ValueError(f"model.redo_temperature needs one token each for {strike!r} and a newline")
        return Redo(strike_id[0], newline_id[0], self.hparams.redo_temperature, seeds)

    def _score_batch(self, batch) -> list[dict]:
        """Generates for a batch of problems and scores each: one record per problem, kept in `self.records` (test
        and predict write them out, callbacks show samples)."""
        votes, indices = self.hparams.votes, batch["index"].tolist()
        # The batch's first problem (and sample_seed) seeds its samples: the same run samples the same traces again.
        texts = self.generate(batch["input_ids"], batch["attention_mask"], batch["max_new_tokens"], votes,
                              seed=indices[0] + self.hparams.sample_seed, context=batch.get("context"), seeds=indices)
        records = [score(self.format, problem, index, texts[row * votes : (row + 1) * votes])
                   for row, (index, problem) in enumerate(zip(indices, batch["problems"], strict=True))]
        self.records += records
        return records

    def restored(self, indices: list[int]) -> bool:
        """Whether a test batch of these problems was decoded by an interrupted test (`done`), so is not again."""
        return all(i in self.done for i in indices)

    def _eval_step(self, batch, stage: str) -> list[dict]:
        metrics, indices = self.stage_metrics[stage], batch["index"].tolist()
        if stage == "test" and self.restored(indices):
            # Batches are made the same way every time, so the batch is what the interrupted test decoded.
            records = [self.done[i] for i in indices]
            self.records += records
        else:
            records = self._score_batch(batch)
        for record in records:
            metrics["remainder_acc"].update(float(record["correct"]))
            metrics["parse_fail_rate"].update(float(record["parsed"] is None))
            for kind in KINDS:
                metrics[f"err_{kind}"].update(float(record["error_kind"] == kind))
        return records

    def _log_eval(self, stage: str) -> None:
        for name, metric in self.stage_metrics[stage].items():
            self.log(f"{stage}/{name}", metric, prog_bar=name == "remainder_acc")

    def _start_eval(self) -> None:
        self.records = []
        if self.compute["decode"] == "bf16":
            # Training's bf16 copy, refreshed at every optimizer step, is the cast of the weights already: decoding
            # on it spares a second copy (and the fp32 one deepcopy makes on the way).
            trained = self._train_copy.get("model")
            self._bf16["decoder"] = (trained or copy.deepcopy(self.model).to(torch.bfloat16)).eval()

    def _end_eval(self, stage: str) -> None:
        if "model" in self._train_copy:
            self._train_copy["model"].train()
        self._bf16.clear()
        self._log_eval(stage)

    def on_validation_epoch_start(self):
        self._start_eval()

    def validation_step(self, batch, batch_idx):
        if self.hparams.val_probe == "forced":
            self._forced_step(batch)
        else:
            self._eval_step(batch, "val")

    def _forced_step(self, batch) -> None:
        metrics, context = self.stage_metrics["val"], batch.get("context")
        vocab = None if self.output_vocab is None else self.output_vocab.to(batch["input_ids"].device)
        with torch.autocast(batch["input_ids"].device.type, enabled=False) if self._bf16 else contextlib.nullcontext():
            for index, example in zip(batch["index"].tolist(), batch["examples"], strict=True):
                found = forced(self.decoding_model, example.prompt_ids, example.completion_ids, context, vocab,
                               example.untrained)
                problem, wrong = example.problem, found.first < len(example.completion_ids)
                # where in the completion's text each token starts that greedy decoding would get wrong if all
                # before it were right (the first is where decoding goes wrong), for error analyses by action
                skip = set(example.untrained)
                missed = [i for i in (~found.hits).nonzero().flatten().tolist() if i not in skip] if wrong else []
                wrong_chars = self._char_starts(example.completion_ids, missed)
                self.records.append({"index": index, "question": problem.question, "dividend": problem.dividend,
                                     "divisor": problem.divisor, "exact": found.exact, "tokens": found.tokens,
                                     "right": found.right, "first_wrong_char": wrong_chars[0] if wrong else None,
                                     "instead": self.tokenizer.decode([found.instead]) if wrong else None,
                                     "wrong_chars": wrong_chars})
                metrics["trace_exact"].update(float(found.exact))
                metrics["trace_right"].update(found.right / found.tokens)
                metrics["loss"].update(found.loss / found.tokens, weight=found.tokens)

    def _char_starts(self, ids: list[int], at: list[int]) -> list[int]:
        """Where tokens `at` (indices into `ids`) start in the text of `ids`: from each token's own text where
        those add up to the whole text (byte-level BPE, characters), else from the text before each one."""
        if not at:
            return []
        decode = partial(self.tokenizer.decode, clean_up_tokenization_spaces=False)
        lengths = [len(decode([t])) for t in ids]
        if sum(lengths) == len(decode(ids)):
            starts = [0, *itertools.accumulate(lengths)]
            return [starts[i] for i in at]
        return [len(decode(ids[:i])) for i in at]

    def on_validation_epoch_end(self):
        self._end_eval("val")

    def on_test_epoch_start(self):
        self._start_eval()

    def test_step(self, batch, batch_idx):
        return self._eval_step(batch, "test")  # the batch's records, which RunRecord keeps as it goes

    def on_test_epoch_end(self):
        self._end_eval("test")

    def on_predict_epoch_start(self):
        self._start_eval()

    def predict_step(self, batch, batch_idx):
        """The records of a batch of questions, scored as test scores them but counted in no metric; `predict`
        writes them to predictions.jsonl and `ask` prints them."""
        return self._score_batch(batch)

    def on_predict_epoch_end(self):
        self._bf16.clear()

    def configure_optimizers(self):
        trained = [p for p in self.model.parameters() if p.requires_grad]  # all, or LoRA's adapters
        decay = [p for p in trained if p.ndim >= 2]
        no_decay = [p for p in trained if p.ndim < 2]
        # fused: one kernel per step for all weights, instead of a pass over every weight per AdamW operation
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams.lr, fused=True,
        )
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = int(self.hparams.warmup_ratio * total)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            if self.hparams.schedule == "constant":
                return 1.0
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(1.0, progress))).item())

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
