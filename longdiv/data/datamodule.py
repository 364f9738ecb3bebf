"""The LightningDataModule: draws problems, renders demonstrations, tokenizes and batches them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Sampler
from transformers.tokenization_utils_base import VERY_LARGE_INTEGER

from longdiv.data.choose import CHOICES, choose
from longdiv.data.formats import get_format
from longdiv.data.problems import Problem, generate, read_file, read_questions, with_dividend_digits
from longdiv.data.windows import windows
from longdiv.tokenizers import load_tokenizer

LONG_DIGITS = list(range(9, 17))  # the long demonstrations' dividend digits unless `long_digits` says otherwise

log = logging.getLogger(__name__)
NO_QUESTIONS = "predict needs questions: pass --data.predict_file FILE, one question per line"


@dataclass
class Example:
    problem: Problem
    prompt_ids: list[int]  # read without loss
    completion_ids: list[int]  # learned; a whole demonstration's ends with EOS
    untrained: tuple[int, ...] = ()  # indices into completion_ids read without loss (`subfix`'s wrong lines)

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def windowed(example: Example, context: int) -> list[Example]:
    """A demonstration as the training examples of its windows (`longdiv.data.windows`): each holds the prompt and
    the completion tokens that window reads before its new ones as its prompt, and the new ones as its completion.
    A demonstration that fits the context is one window: the same example."""
    prompt, completion = example.prompt_ids, example.completion_ids
    return [Example(example.problem, prompt + completion[start:new], completion[new:end],
                    tuple(i - new for i in example.untrained if new <= i < end))
            for start, new, end in windows(len(completion), context - len(prompt))]


def collate_train(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Pads on the right. Labels come from lengths: -100 on the prompt and padding, token ids on the completion
    and its EOS (but -100 on its `untrained` tokens), so a pad id that equals EOS never hides the EOS that must be
    learned."""
    width = max(map(len, examples))
    input_ids = torch.full((len(examples), width), pad_id)
    labels = torch.full((len(examples), width), -100)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, ex in enumerate(examples):
        ids = ex.prompt_ids + ex.completion_ids
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, len(ex.prompt_ids) : len(ids)] = torch.tensor(ex.completion_ids)
        labels[row, [len(ex.prompt_ids) + i for i in ex.untrained]] = -100
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def collate_eval(examples: list[tuple[int, Example]], pad_id: int,
                 context: int | None = None) -> dict[str, torch.Tensor | list[Problem] | int | None]:
    """Pads prompts on the left so that generation continues every row from the same position. The batch carries
    each row's index in its evaluation set, its Problem (`problems`, a list) and the `context` that generation
    slides its window in (None: the model's own, without sliding), so that scoring needs nothing else."""
    width = max(len(ex.prompt_ids) for _, ex in examples)
    input_ids = torch.full((len(examples), width), pad_id)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (_, ex) in enumerate(examples):
        input_ids[row, width - len(ex.prompt_ids) :] = torch.tensor(ex.prompt_ids)
        attention_mask[row, width - len(ex.prompt_ids) :] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "index": torch.tensor([i for i, _ in examples]),
        "problems": [ex.problem for _, ex in examples],
        "examples": [ex for _, ex in examples],  # their reference traces, for a probe that reads them (`forced`)
        # Each row's generation budget, from its reference trace's length: room for a right trace (it has exactly
        # the reference's tokens) and a little more, so that a wrong trace that never stops costs a bounded time,
        # and the same whatever other rows share its batch.
        "max_new_tokens": torch.tensor([len(ex.completion_ids) + 16 for _, ex in examples]),
        "context": context,
    }


class BucketSampler(Sampler[int]):
    """Training order in which neighbouring examples have similar lengths, so batches carry little padding.

    Each epoch (set by Lightning through `set_epoch`) shuffles the examples, sorts windows of 16 batches by length,
    cuts them into batches and shuffles the batches. Under several processes, each rank takes every world-th
    batch; ranks pad with repeated batches so that all take the same number of steps. `resume(epoch, skip)` makes
    the next pass over that epoch start after its first `skip` indices.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.lengths, self.batch_size, self.seed, self.rank, self.world = lengths, batch_size, seed, rank, world
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def resume(self, epoch: int, skip: int) -> None:
        self.epoch, self._resume = epoch, (epoch, skip)

    def skipped(self) -> int:
        """How many indices the next pass skips: those taken before a resume point in the current epoch."""
        return self._resume[1] if self._resume is not None and self._resume[0] == self.epoch else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        window = 16 * self.batch_size
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        per_rank = -(-len(batches) // self.world)
        batches += batches[: per_rank * self.world - len(batches)]
        return batches[self.rank :: self.world]

    def __iter__(self):
        # Read when iteration starts, after Lightning's `set_epoch`: a resume point holds only for its own epoch.
        skip, self._resume = self.skipped(), None
        yield from [i for batch in self.batches() for i in batch][skip:]

    def __len__(self) -> int:
        return sum(map(len, self.batches()))


class ResumableLoader(DataLoader):
    """A training DataLoader that Lightning can checkpoint mid-epoch: it counts the batches it has handed out this
    epoch, and on resume its BucketSampler skips them, so the run continues with the batch it would have taken.

    Lightning stores `state_dict()` in each checkpoint and calls `load_state_dict()` before the resumed epoch
    starts, because the loader has both methods.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.served = 0

    def __iter__(self):
        self.served = self.sampler.skipped() // self.batch_size
        for batch in super().__iter__():
            self.served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self.served}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.sampler.resume(state_dict["epoch"], state_dict["batches"] * self.batch_size)


def data_hash(train: list[Example], evals: dict[str, list[Problem]]) -> str:
    """A fingerprint of every demonstration (as token ids) and every evaluation problem."""
    digest = hashlib.sha256()
    for ex in train:
        digest.update(repr((ex.prompt_ids, ex.completion_ids)).encode())
    for name in sorted(evals):
        digest.update(name.encode() + repr([p.key for p in evals[name]]).encode())
    return digest.hexdigest()[:16]


class DivisionData(L.LightningDataModule):
    def __init__(
        self,
        format: str = "subrow",
        num_demos: int = 200,
        data_seed: int = 0,
        order_seed: int | None = None,
        train_file: str | None = None,
        train_split: str = "train",
        demo_choice: str = "sample",
        long_demos: int = 0,
        long_digits: list[int] | None = None,
        self_traces: str | None = None,
        num_val: int = 100,
        val_file: str | None = None,
        num_test: int = 500,
        test_file: str | None = None,
        predict_file: str | None = None,
        eval_split: str = "interpolate",
        test_dividend_digits: list[int] | None = None,
        tokenizer_name: str = "tiny",
        context: int | None = None,
        max_length: int | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 32,
    ):
        """Division demonstrations for training and problems for evaluation.

        Args:
            format: Demonstration format, by registry name (see `longdiv.data.formats`).
            num_demos: Training demonstrations. Taken from `train_file` (a seeded sample when the file has more)
                or drawn from the generator's `train_split`.
            data_seed: Seeds which problems are drawn; separate from the training seed.
            order_seed: Seeds the order of the training batches. By default the training seed (`seed_everything`,
                which Lightning exports as `PL_GLOBAL_SEED`), so that two training seeds see the demonstrations in
                two orders even where nothing else in training is random (a pretrained model without dropout);
                `data_seed` when no training seed was set.
            train_file: A problems file (`question|answer` lines or the DeepMind layout) to train on.
            train_split: Generator split for training problems when there is no `train_file`.
            demo_choice: Which `num_demos` of a `train_file` that holds more: `sample` (seeded by `data_seed`),
                `first`, `coverage` (chosen to show every divisor and dividend length and every subtraction cell
                case) or `cells` (those whose traces hold the most subtraction cells); see `longdiv.data.choose`.
            long_demos: How many of the `num_demos` demonstrations get a longer dividend: each keeps its divisor and
                gets a new dividend with a digit count taken in turn from `long_digits` (for priming length
                generalization; the paper's dividends have at most 8 digits). The demonstrations are still
                `num_demos`, and the run is reported as `num_demos` with `long_demos` long ones.
            long_digits: The long dividends' digit counts; by default 9 to 16.
            self_traces: Self-training: a JSONL file of a model's own traces (records as a test run's
                `predictions.jsonl` holds them: question, dividend, divisor, `generated`), trained on as written,
                after the demonstrations. A record with a `kept` field is trained on when it is true: a filter chose
                it (experiments.self_improve), so its trace may be wrong. A record without one, as in a test run's
                own file, is trained on when its remainder is right, which uses the answers of those problems as
                well as the `num_demos` demonstrations. The run's record says how many traces it trained on
                (`self_traces`).
            num_val: Validation problems drawn from the generator's `eval_split` (ignored with `val_file`).
            val_file: A problems file to validate on, used whole.
            num_test: Test problems drawn from the generator's `eval_split` (ignored with `test_file`).
            test_file: A problems file to test on, used whole.
            predict_file: Questions for `predict`, one per line; an answer after a '|' or on the next line is
                optional (checked when given). Without it, `predict` reads `test_file`.
            eval_split: Generator split for validation and test problems.
            test_dividend_digits: Dividend digit counts for generated test problems, e.g. [10, 11, 12], to test
                length generalization: the test draw keeps its divisors and gets new dividends of these lengths.
            tokenizer_name: Tokenizer name; linked from the model's name by the CLI.
            context: Tokens the model sees at once, in training and generation. A demonstration longer than this is
                cut into overlapping windows, each starting with the prompt (for `recchia-*`, the question), and
                generation slides its window the same way (`longdiv.data.windows`). By default the model's own
                window (`max_length`).
            max_length: The model's own window in tokens; linked from the model by the CLI. Without it, the
                tokenizer's `model_max_length`.
            batch_size: Training batch size.
            eval_batch_size: Problems generated together in evaluation.
        """
        super().__init__()
        self.save_hyperparameters(ignore=["format"])  # a checkpoint keeps it once, with the model's settings
        self.format = get_format(format)
        problems = []
        if num_demos < 1:
            problems.append(f"num_demos is {num_demos}; it must be at least 1")
        if context is not None and context < 3:
            problems.append(f"context is {context}; it must hold a prompt and two tokens after it")
        problems += [f"{name} is {value}; it must be at least 1" for name, value in
                     (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)) if value < 1]
        if not 0 <= long_demos <= num_demos:
            problems.append(f"long_demos is {long_demos}; it must be between 0 and num_demos ({num_demos})")
        if demo_choice not in CHOICES:
            problems.append(f"demo_choice {demo_choice!r} is unknown; choose one of {', '.join(CHOICES)}")
        for name in ("train_file", "self_traces", "val_file", "test_file", "predict_file"):
            if getattr(self.hparams, name) is not None and not Path(getattr(self.hparams, name)).is_file():
                problems.append(f"{name} {getattr(self.hparams, name)!r} does not exist; pass an existing file")
        if problems:
            raise ValueError("; ".join(problems))
        self.tokenizer = None
        self._char_vocab: dict[str, int] = {}
        self.context: int | None = None  # resolved when the tokenizer is loaded
        self.demos: list[Example] = []  # whole demonstrations
        self.self_examples: list[Example] = []  # the model's own right traces (`self_traces`)
        self.train_examples: list[Example] = []  # what training iterates: the demonstrations' windows
        self.eval_examples: dict[str, list[Example]] = {}
        self.removed_overlap = 0
        self.hash = None
        # Problems that the weights were trained on before this run (a checkpoint's, set by `hold_out`); evaluation
        # leaves them out like this run's own training problems.
        self.trained_on: set[tuple[int, int]] = set()
        self.draw = True  # whether setup draws and encodes training demonstrations (`hold_out`)
        self.identity: dict | None = None
        self._train_loader: ResumableLoader | None = None
        self._loader_state: dict[str, int] | None = None

    # Problems ------------------------------------------------------------------------------------------------
    def train_problems(self) -> list[Problem]:
        hp = self.hparams
        if hp.train_file is None:
            problems = generate(hp.train_split, hp.num_demos, hp.data_seed)
        else:
            pool = read_file(hp.train_file)
            if hp.num_demos > len(pool):
                raise ValueError(
                    f"num_demos is {hp.num_demos} but {hp.train_file} holds {len(pool)} problems; lower num_demos or "
                    "train from the generator (drop train_file)"
                )
            problems = choose(pool, hp.num_demos, hp.demo_choice, hp.data_seed)
        if hp.long_demos:  # the last ones of the draw, their dividends redrawn longer (a stream of its own)
            keep = len(problems) - hp.long_demos
            longer = with_dividend_digits(problems[keep:], hp.long_digits or LONG_DIGITS, hp.data_seed * 7919 + 3)
            problems = problems[:keep] + longer
        return problems

    def self_traced(self) -> list[tuple[Problem, str]]:
        """The problems of `self_traces` to train on (those a filter kept, else those whose trace gives the right
        remainder), with their traces."""
        if self.hparams.self_traces is None:
            return []
        kept = []
        for line in Path(self.hparams.self_traces).read_text().splitlines():
            record = json.loads(line)
            if record.get("kept", record.get("correct")):
                kept.append((Problem(record["dividend"], record["divisor"], record["question"]), record["generated"]))
        return kept

    def eval_problems(self, stage: str) -> list[Problem]:
        hp = self.hparams
        path = hp.val_file if stage == "val" else hp.test_file
        if path is not None:
            return read_file(path)
        count = hp.num_val if stage == "val" else hp.num_test
        # Distinct streams per stage, and distinct from any training draw with the same data_seed.
        seed = hp.data_seed * 7919 + (1 if stage == "val" else 2) + 10**6
        if stage == "test" and hp.test_dividend_digits:
            return with_dividend_digits(generate(hp.eval_split, count, seed), hp.test_dividend_digits, seed)
        return generate(hp.eval_split, count, seed)

    def hold_out(self, keys, draw: bool = True) -> None:
        """Leaves the problems with these keys (dividend, divisor) out of evaluation: those a checkpoint's weights
        were trained on. `draw` False: this run only evaluates those weights, so it makes no training draw of its
        own (its data settings may describe other demonstrations). Call before `setup`."""
        self.trained_on |= {tuple(key) for key in keys}
        self.draw = self.draw and draw

    def predict_problems(self) -> list[Problem]:
        path = self.hparams.predict_file or self.hparams.test_file
        if path is None:
            raise ValueError(NO_QUESTIONS)
        return read_questions(path)

    # Tokens --------------------------------------------------------------------------------------------------
    def encode(self, problems: list[Problem], completions: list[str] | None = None) -> list[Example]:
        """Renders and tokenizes, one tokenizer call for all prompts and one for all completions.

        Formats with `char_layout` (the `sub` family) need one token per character: their digits are found by fixed
        distances. A tokenizer that merges characters there (GPT-2's BPE, used by GPT-Neo, turns `94` or `.-` into
        one token) gets every completion, and every prompt after its question line, encoded one character at a time
        instead; a tokenizer that already splits them (SmolLM2's) is left as it is.
        """
        if not problems:
            return []
        prompts, rendered = zip(*map(self.format.render, problems))
        own = completions is not None  # texts written elsewhere (a model's traces) in place of the format's
        completions = tuple(completions) if own else rendered
        tok = self.tokenizer
        completion_ids = tok(list(completions), add_special_tokens=False)["input_ids"]
        char_level = self.format.char_layout and any(
            len(ids) != len(text) for ids, text in zip(completion_ids, completions)
        )
        if char_level:
            questions, layouts = zip(*(prompt.split("\n", 1) for prompt in prompts))
            question_ids = tok([q + "\n" for q in questions], add_special_tokens=False)["input_ids"]
            prompt_ids = [q + self._char_ids(layout) for q, layout in zip(question_ids, layouts)]
            completion_ids = [self._char_ids(text) for text in completions]
        else:
            prompt_ids = tok(list(prompts), add_special_tokens=False)["input_ids"]
        # A model pretrained with a start token (Gemma's BOS) gets it before every prompt, as in its pretraining;
        # tokenizers that add none (SmolLM2's, GPT-2's) leave the prompts as they were.
        start = tok("", add_special_tokens=True)["input_ids"]
        start = start if start == [tok.bos_token_id] else []
        untrained = [() if own else self.untrained(p, len(ids), len(text))
                     for p, ids, text in zip(problems, completion_ids, completions)]
        return [Example(p, start + a, b + [tok.eos_token_id], u)
                for p, a, b, u in zip(problems, prompt_ids, completion_ids, untrained)]

    def untrained(self, problem: Problem, tokens: int, chars: int) -> tuple[int, ...]:
        """The completion tokens of `problem` read without loss: the format's `untrained` character spans, one token
        per character."""
        spans = self.format.untrained(problem)
        if spans and tokens != chars:
            raise ValueError(f"format {self.format.name} leaves spans unlearned and needs one token per character")
        return tuple(i for start, end in spans for i in range(start, end))

    def _char_ids(self, text: str) -> list[int]:
        """One token per character of `text`."""
        ids = []
        for char in text:
            if char not in self._char_vocab:
                token = self.tokenizer(char, add_special_tokens=False)["input_ids"]
                if len(token) != 1:
                    raise ValueError(f"the tokenizer has no single token for {char!r}; format {self.format.name} "
                                     "needs one token per character")
                self._char_vocab[char] = token[0]
            ids.append(self._char_vocab[char])
        return ids

    def predict_on(self, problems: list[Problem]) -> None:
        """Makes `problems` what `predict_dataloader` serves, rendered in this format's prompts: `setup("predict")`
        gives it the questions of `predict_file`, `ask` the questions typed."""
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.hparams.tokenizer_name)
            self.context = self.resolve_context()
        self.eval_examples["predict"] = self.check_prompts(self.encode(problems))

    def resolve_context(self) -> int | None:
        """`context`, else the model's window: `max_length`, else what the tokenizer states (transformers' stand-in
        for "no limit" states nothing); None when nothing states one."""
        hp = self.hparams
        window = hp.max_length or getattr(self.tokenizer, "model_max_length", None)
        window = window if window and window < VERY_LARGE_INTEGER else None
        if hp.context and window and hp.context > window:
            raise ValueError(f"context is {hp.context} but the model's window is {window}; pass --data.context "
                             f"{window} or less")
        return hp.context or window

    def check_prompts(self, examples: list[Example]) -> list[Example]:
        """`examples`, when each prompt leaves room in the context for two completion tokens after it (a window that
        slides keeps one and predicts the next)."""
        longest = max(examples, key=lambda e: len(e.prompt_ids), default=None)
        if self.context and longest and len(longest.prompt_ids) > self.context - 2:
            raise ValueError(
                f"a {self.format.name} prompt is {len(longest.prompt_ids)} tokens ({longest.problem.question!r}) "
                f"but the context is {self.context}, which leaves no room for its completion; raise --data.context "
                "(up to the model's window) or choose a format with shorter prompts"
            )
        return examples

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            # Only the questions: no training draw, since no accuracy is claimed and each truth comes from its question.
            self.predict_on(self.predict_problems())
            return
        if self.tokenizer is not None:
            return
        hp = self.hparams
        self.tokenizer = load_tokenizer(hp.tokenizer_name)
        train = self.train_problems() if self.draw else []
        selfed = self.self_traced() if self.draw else []
        seen = {p.key for p in train} | {p.key for p, _ in selfed}
        if len(seen) < len(train):
            log.warning("training problems hold %d duplicates", len(train) - len(seen))
        trained = seen | self.trained_on
        evals = {}
        for name in ("val", "test"):
            problems = self.eval_problems(name)
            kept = [p for p in problems if p.key not in trained]
            self.removed_overlap += len(problems) - len(kept)
            if len(kept) < len(problems):
                log.warning("removed %d %s problems that are also training problems", len(problems) - len(kept), name)
            if not kept:
                raise ValueError(f"every {name} problem is also a training problem; evaluate on other problems")
            evals[name] = kept
        self.context = self.resolve_context()
        self.demos = self.check_prompts(self.encode(train))
        if selfed:
            self.self_examples = self.check_prompts(self.encode(*map(list, zip(*selfed))))
        self.eval_examples = {name: self.check_prompts(self.encode(ps)) for name, ps in evals.items()}
        whole = self.demos + self.self_examples
        self.train_examples = [w for ex in whole for w in windowed(ex, self.context)] if self.context else whole
        if self.self_examples:
            rank_zero_info(f"self-training on {len(self.self_examples)} right traces of {self.hparams.self_traces}")
        if len(self.train_examples) > len(whole):
            rank_zero_info(f"{len(whole)} demos cut into {len(self.train_examples)} windows of {self.context} "
                           "tokens at most")
        self.hash = data_hash(self.train_examples, evals)
        # What the weights trained from this data have seen, saved in every checkpoint: testing one later removes
        # these problems whatever it evaluates on, and resuming one checks that the data is the same.
        self.identity = {"num_demos": len(train), "data_seed": hp.data_seed,
                         "data_hash": self.hash, "train_keys": [list(key) for key in sorted(trained)]}
        rank_zero_info(f"data hash {self.hash}, {len(train)} demos, removed {self.removed_overlap} overlapping")
        if self.trainer is not None:
            for logger in self.trainer.loggers:
                logger.log_hyperparams({"data_hash": self.hash, "removed_overlap": self.removed_overlap})

    # Loaders -------------------------------------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _own_generator(self) -> torch.Generator:
        # A DataLoader draws a seed whenever it starts a pass; from its own generator that draw leaves the global
        # stream alone, so dropout after a resume or an extra validation pass draws what it would have.
        return torch.Generator().manual_seed(self.hparams.data_seed)

    def order_seed(self) -> int:
        if self.hparams.order_seed is not None:
            return self.hparams.order_seed
        return int(os.environ.get("PL_GLOBAL_SEED", self.hparams.data_seed))

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        pad = self.tokenizer.pad_token_id
        sampler = BucketSampler([len(e) for e in self.train_examples], self.hparams.batch_size, self.order_seed(),
                                rank, world)
        self._train_loader = ResumableLoader(
            self.train_examples,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            collate_fn=partial(collate_train, pad_id=pad),
            generator=self._own_generator(),
        )
        if self._loader_state is not None:
            self._train_loader.load_state_dict(self._loader_state)
            self._loader_state = None
        return self._train_loader

    # Checkpoints -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Where training stands in its epoch and the data's identity (`identity`), saved in each checkpoint."""
        state = self._train_loader.state_dict() if self._train_loader is not None else {}
        return state | ({"identity": self.identity} if self.identity is not None else {})

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        saved = state.pop("identity", None)
        fitting = self.trainer is not None and self.trainer.state.fn == "fit"
        if fitting and saved is not None and saved["data_hash"] != self.hash:
            raise ValueError(
                f"the checkpoint was trained on data with hash {saved['data_hash']}, but this run's data hash is "
                f"{self.hash} (its problems or their rendering changed), so resuming it would mix two experiments; "
                "start a new run from its weights with --init_from instead of --ckpt_path"
            )
        # Lightning restores the DataModule before it builds the fit's train loader, and the loader built next is
        # the one the fit iterates. Lightning's own restore of loader state never reaches that loader when
        # configure_optimizers counts steps (estimated_stepping_batches builds it before the loops are restored).
        self._loader_state = state or None

    def _eval_loader(self, name: str) -> DataLoader:
        """Each rank takes its own share of the problems, with no padding, so every problem counts exactly once.
        Problems are ordered by the length of their reference trace, longest first, so that the rows of a batch
        generate about as many tokens each: a batch runs until its longest row ends, and rows that end early leave
        the rest to run with a smaller, less efficient batch. Longest first: the largest cache is met at once."""
        rank, world = self._rank_world()
        examples = self.eval_examples[name]
        lengths = [(len(ex.completion_ids), len(ex.prompt_ids)) for ex in examples]
        order = sorted(range(len(examples)), key=lambda i: (-lengths[i][0], -lengths[i][1], i))[rank::world]
        pad = self.tokenizer.pad_token_id
        return DataLoader(
            [(i, examples[i]) for i in order],
            batch_size=self.hparams.eval_batch_size,
            collate_fn=partial(collate_eval, pad_id=pad, context=self.context),
            generator=self._own_generator(),
        )

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # An evaluation batch carries its Problems and Examples, which stay on the host: Lightning's move would try
        # to rebuild each frozen dataclass field by field, and refuse.
        if not (isinstance(batch, dict) and "problems" in batch):
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        host = {key: batch[key] for key in ("problems", "examples")}
        tensors = {key: value for key, value in batch.items() if key not in host}
        return {**super().transfer_batch_to_device(tensors, device, dataloader_idx), **host}

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("predict")
