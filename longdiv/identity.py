"""What a run is, decided in one place: its identity (model, format, N, data hash, training settings) from its
settings or from a checkpoint plus the options typed next to it, and its parts wired together (the data a model
reads: its tokenizer and window). The only reader of checkpoints: loading code is refused (`weights_only`), and a
checkpoint whose settings ask for a model of other shapes than its tensors is refused before any model is made.

The CLI (resume, evaluate, `--init_from`), the run record, `ask`, `export`, experiments and benchmarks call it.
"""

from __future__ import annotations

import inspect
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch.utilities import rank_zero_warn

from longdiv import errors, runs

# The format is stored once in a checkpoint, with the model's settings (so `DivisionLM.load_from_checkpoint` prompts
# and parses in it); the data's settings come back through the model's: data.format is the CLI's source of the link.
# Linked settings that are not stored: the tokenizer and window follow the model.
LINKED = {"model": set(), "data": {"tokenizer_name", "max_length", "format"}}
IDENTITY_KEY = "DivisionData"  # the DataModule's state in a checkpoint (Lightning keys it by the class's name)
# Settings a resumed fit may change: they decide how it evaluates or computes, not what it trains.
RESUME_MAY_CHANGE = {"model.votes", "model.temperature", "model.sample_seed", "model.precision", "model.compile",
                     "data.eval_batch_size"}
# The data settings that choose the training demonstrations: an evaluated checkpoint's own are used and recorded
# (data_seed also seeds generated evaluation problems, so it stays as given).
DRAW = ("num_demos", "train_file", "train_split", "demo_choice", "long_demos", "long_digits", "self_traces")
FILES = ("train_file", "self_traces")
# Settings outside the model and data that shape training: a resumed fit must keep them. The length of training
# may grow only where the learning rate does not depend on it (model.schedule constant): extending a run.
TRAINING = ("seed_everything", "trainer.accumulate_grad_batches", "trainer.gradient_clip_val",
            "trainer.gradient_clip_algorithm", "trainer.precision")
LENGTH = ("trainer.max_epochs", "trainer.max_steps")
# The settings that give weights their shape: a fit started from a checkpoint's weights (--init_from) takes these
# (a LoRA checkpoint's weights hold its adapters: a fit from them trains those adapters on).
ARCHITECTURE = ("model", "tokenizer", "config_overrides", "lora_rank")


class RunsCode(ValueError):
    """A checkpoint that holds objects beyond tensors and plain data: loading it with weights_only is refused."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def plain(value: Any) -> Any:
    return value.as_dict() if isinstance(value, Namespace) else value


def setting(config: dict | Namespace | None, key: str) -> Any:
    """The value of a dotted `key` (`trainer.max_epochs`) in a config, None where it has none."""
    for part in key.split("."):
        config = config.get(part) if config is not None else None
    return plain(config)


# Reading ---------------------------------------------------------------------------------------------------------
def read(path: str | Path, weights_only: bool = True) -> dict:
    """A checkpoint's saved settings (`saved`: model and data, the format under both), data `identity`, the `config`
    of the run that wrote it (None before longdiv kept it), its optimizer `step`, its model's `weights` and their
    `shapes`, read
    memory-mapped: the tensors are read from disk only when used."""
    try:
        ckpt = torch.load(path, weights_only=weights_only, map_location="cpu", mmap=True)
    except pickle.UnpicklingError as err:
        reason = str(err).split("WeightsUnpickler error: ")[-1].split(" was not an allowed")[0].split("\n")[0]
        raise RunsCode(
            f"ckpt_path {path}: refused, loading it would run code ({reason}). A longdiv checkpoint holds only "
            "tensors and plain settings; pass a checkpoint that longdiv wrote", reason
        ) from None
    saved = {}
    for group, key in (("model", "hyper_parameters"), ("data", "datamodule_hyper_parameters")):
        values = ckpt.get(key) or {}
        saved[group] = {k: v for k, v in values.items() if not k.startswith("_") and k not in LINKED[group]}
    # Checkpoints written before the format was stored once hold it with the data too; it is the same value.
    fmt = saved["model"].pop("format", None) or (ckpt.get("datamodule_hyper_parameters") or {}).get("format")
    if fmt is not None:
        saved["data"]["format"] = fmt
    record = next((state for key, state in (ckpt.get("callbacks") or {}).items() if key.startswith("RunRecord")), {})
    state = ckpt.get("state_dict") or {}
    identity = (ckpt.get(IDENTITY_KEY) or {}).get("identity")
    if identity is not None:
        identity = {k: v for k, v in identity.items() if k != "format"} | {"format": fmt}
    return {"saved": saved, "identity": identity, "config": record.get("config"), "step": ckpt.get("global_step"),
            "weights": state,
            "shapes": {k.removeprefix("model."): tuple(v.shape) for k, v in state.items() if k.startswith("model.")}}


def check_shapes(path: str | Path, model: dict, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuses a checkpoint whose model settings (`model`: model, tokenizer, config_overrides, lora_rank) ask for a
    model of other shapes than its tensors hold, before the model is made: a damaged or edited checkpoint could ask
    for one larger than the machine's memory."""
    from longdiv.models import loading

    if model.get("lora_rank"):  # its tensors are named by peft's adapters
        return
    wanted = loading.random_init_shapes(model["model"], model.get("tokenizer"), model.get("config_overrides"))
    if wanted is None or wanted == shapes:
        return
    sizes = [sum(math.prod(shape) for shape in d.values()) for d in (wanted, shapes)]
    first = next((k for k in wanted if wanted[k] != shapes.get(k)), next(iter(set(shapes) - set(wanted)), None))
    raise ValueError(f"ckpt_path {path}: its settings ask for a {model['model']} of {sizes[0]:,} parameters, but its "
                     f"tensors hold {sizes[1]:,} ({first}: {wanted.get(first)} asked, {shapes.get(first)} held); the "
                     "checkpoint was damaged or edited: use the one its run wrote")


def weights(path: str | Path) -> dict:
    """A checkpoint's model weights (its Lightning `state_dict`), loaded memory-mapped and weights-only."""
    return torch.load(path, weights_only=True, map_location="cpu", mmap=True)["state_dict"]


def load(path: str | Path, weights_only: bool = True, **settings) -> tuple[Any, dict]:
    """The DivisionLM of the checkpoint at `path` on the CPU, its saved model settings under `settings` (which win),
    and what `read` found in it: the file is read once. A checkpoint that would run code is one line, naming
    `--unsafe_load` (weights_only False) for files the user trusts."""
    from longdiv.models.module import DivisionLM

    try:
        with errors.reading_checkpoint(path):
            found = read(path, weights_only)
            options = inspect.signature(DivisionLM).parameters
            gone = sorted(set(found["saved"]["model"]) - set(options))
            if gone:  # written by an older longdiv
                rank_zero_warn(f"{path} holds settings that are no longer options, ignored: {', '.join(gone)}")
            model = {k: v for k, v in found["saved"]["model"].items() if k in options}
            model |= {"format": found["saved"]["data"]["format"]} if "format" in found["saved"]["data"] else {}
            model |= settings
            check_shapes(path, model, found["shapes"])
            module = DivisionLM(**model)
            module.load_state_dict(found["weights"])
            return module, found
    except (pickle.UnpicklingError, RunsCode) as err:
        reason = err.reason if isinstance(err, RunsCode) else str(err).splitlines()[0]
        raise errors.UsageError(
            "checkpoint", f"--ckpt_path {path}", f"holds objects beyond tensors and plain data ({reason})",
            "if you trust the file, pass --unsafe_load to unpickle it fully",
        ) from None


# Identity ----------------------------------------------------------------------------------------------------------
def trained(checkpoint: dict | None, **own) -> dict:
    """The identity of the weights a run uses (`num_demos`, `data_hash`, ... as asked): an evaluated checkpoint's,
    which it was trained on whatever this run's data settings draw, otherwise the run's `own`."""
    if runs.evaluated(checkpoint):
        return {key: checkpoint[key] for key in own}
    return own


def differences(changed: dict) -> str:
    return ", ".join(f"{key} is {v['used']!r} here and {v['checkpoint']!r} in the checkpoint"
                     for key, v in changed.items())


def from_checkpoint(sub: str, config: Namespace, parse: Callable[[Namespace], Namespace]
                    ) -> tuple[Namespace, dict | None, list]:
    """A run's settings when its `--ckpt_path` (or `--init_from`) is a checkpoint, from the settings `config` parsed
    without it: `parse(under)` parses the user's input again over `under`, the checkpoint's settings, so the command
    line and the --config files given win, the checkpoint fills the rest, and the defaults come last. A resumed fit
    must be the same experiment; an evaluation uses the checkpoint's format (unless asked otherwise) and training
    draw; `--init_from` takes only the weights' shape. Returns the settings, what the checkpoint is and how this
    run uses it (`path`, `use`, its identity, the settings used in place of its own: `changed`; None without a
    checkpoint), and the (dividend, divisor) keys of its training problems."""
    cfg = config[sub]
    if cfg.init_from and (sub != "fit" or cfg.ckpt_path):
        raise ValueError(f"init_from {cfg.init_from}: it starts a new fit from a checkpoint's weights; pass it "
                         "to fit without --ckpt_path (--ckpt_path alone resumes a fit or evaluates a checkpoint)")
    path = cfg.init_from or cfg.get("ckpt_path")
    option = "init_from" if cfg.init_from else "ckpt_path"
    if path == "last" and option == "ckpt_path":
        # The run folder's last checkpoint, read and checked as if its path had been given; with none saved yet
        # the run starts from step 0, so one command both starts a run and resumes it (a preemptible machine's job).
        if sub != "fit":  # an evaluation would write into the fit's folder, or test the untrained model
            raise ValueError(f"ckpt_path 'last' resumes a fit; pass the checkpoint to {sub} by its path "
                             "(runs/<run>/checkpoints/last.ckpt)")
        root = cfg.trainer.default_root_dir
        if root is None:
            raise ValueError("ckpt_path 'last' needs the run to resume: pass --ckpt_path "
                             "runs/<run>/checkpoints/last.ckpt, or add --trainer.default_root_dir runs/<run>")
        path = str(Path(root) / "checkpoints" / "last.ckpt")
        if not Path(path).is_file():
            rank_zero_warn(f"ckpt_path 'last': no checkpoint at {path} yet; the run starts from step 0")
            cfg.ckpt_path = None
            return config, None, []
    if path and Path(path).is_dir():
        inside = Path(path) / "checkpoints" / "last.ckpt"
        fix = (f"pass its checkpoint, {inside}" if inside.is_file() else "pass a checkpoint file "
               "(runs/<run>/checkpoints/last.ckpt); an exported folder answers `python -m longdiv ask`")
        raise ValueError(f"{option} {path} is a folder; {fix}")
    if not path or not Path(path).is_file():
        return config, None, []
    with errors.reading_checkpoint(path, f"--{option}"):
        ckpt = read(path, weights_only=cfg.get("weights_only") is not False)
    saved, identity = ckpt["saved"], ckpt["identity"] or {}
    if cfg.init_from:  # a new experiment: only the shape of the weights comes from the checkpoint
        saved = {"model": {k: v for k, v in saved["model"].items() if k in ARCHITECTURE}, "data": {}}
    gone = [f"{group}.{key}" for group, values in saved.items() for key in values if key not in cfg[group]]
    if gone:  # written by an older longdiv
        rank_zero_warn(f"{path} holds settings that are no longer options, ignored: {', '.join(gone)}")
        saved = {group: {k: v for k, v in values.items() if k in cfg[group]} for group, values in saved.items()}
    under = Namespace()
    for group, values in saved.items():
        for key, value in values.items():
            under[f"{sub}.{group}.{key}"] = value
    config = parse(under)
    cfg = config[sub]
    if option == "ckpt_path":
        cfg.ckpt_path = path  # the file read here, not `last` again
    check_shapes(path, plain(cfg.model), ckpt["shapes"])
    if sub != "fit" and not cfg.init_from and "train_keys" in identity:
        # Evaluated weights were trained on the checkpoint's demonstrations, whatever a config here draws. Their
        # keys come with the checkpoint, so files it named (train_file, self_traces) are not read: one that is not
        # on this machine is left out rather than refused.
        for key in DRAW:
            if key in saved["data"]:
                value = saved["data"][key]
                away = key in FILES and value is not None and not Path(value).is_file()
                if away:
                    rank_zero_warn(f"{path} was trained with data.{key} {value}, which is not here; its training "
                                   "problems are held out all the same (the checkpoint lists them)")
                cfg.data[key] = None if away else value
    changed = {f"{group}.{key}": {"checkpoint": value, "used": plain(cfg[group][key])}
               for group, values in saved.items() for key, value in values.items()
               if plain(cfg[group][key]) != value}
    fmt = saved["data"].get("format", identity.get("format"))
    if cfg.init_from:
        use = "initialized"
        if changed:
            raise ValueError(f"init_from {path}: {differences(changed)}, and a run started from its weights keeps "
                             "their model, tokenizer and config_overrides; drop those options")
    elif sub == "fit":
        use = "resumed"
        run = ckpt["config"] or {}  # the config of the run that saved it (none before longdiv kept it)
        for key in (*TRAINING, *LENGTH) if run else ():
            if setting(cfg, key) != setting(run, key):
                changed[key] = {"checkpoint": setting(run, key), "used": setting(cfg, key)}
        if cfg.model.schedule == "constant":  # the learning rate does not depend on the run's length
            changed |= {k.replace("trainer.", "extended: trainer."): changed.pop(k) for k in LENGTH if k in changed}
        differ = {k: v for k, v in changed.items() if k not in RESUME_MAY_CHANGE and not k.startswith("extended")}
        if differ:
            raise ValueError(f"fit --ckpt_path {path} resumes its run, but {differences(differ)}; drop those "
                             f"options to resume, or start a new run from its weights with --init_from {path} "
                             "instead of --ckpt_path")
    else:
        use = "evaluated"
        if "data.format" in changed:
            if not cfg.allow_format_change:
                raise ValueError(f"ckpt_path {path} was trained on format {fmt}, not {cfg.data.format}; drop "
                                 "--data.format to evaluate it on its own format, or add --allow_format_change "
                                 "true to evaluate it in another on purpose")
            rank_zero_warn(f"EVALUATING IN ANOTHER FORMAT: {path} was trained on format {fmt} and is evaluated "
                           f"on {cfg.data.format} (--allow_format_change); the run record says so")
    checkpoint = {"path": str(path), "use": use, "model": saved["model"].get("model"), "format": fmt,
                  "num_demos": identity.get("num_demos", saved["data"].get("num_demos")),
                  "data_seed": identity.get("data_seed", saved["data"].get("data_seed")),
                  "data_hash": identity.get("data_hash"), "changed": changed,
                  "seed": (ckpt["config"] or {}).get("seed_everything"),  # its training seed, once kept
                  "step": ckpt["step"]}  # its optimizer step: a test goes on only from one of the same weights
    if "train_keys" not in identity and use != "resumed":
        rank_zero_warn(f"{path} does not list its training problems (written before longdiv saved them); "
                       "evaluation removes only the problems this run's data settings draw for training")
    return config, checkpoint, identity.get("train_keys", [])


# Parts -------------------------------------------------------------------------------------------------------------
def tokenizer_name(model: str, tokenizer: str | None) -> str:
    """The tokenizer a model reads: its own unless `tokenizer` names another."""
    return tokenizer or model


def data_for(module, **settings):
    """The DivisionData wired to `module` as the CLI wires them: the module's format, its tokenizer and its window
    (`max_length`), with `settings` for the rest."""
    from longdiv.data.datamodule import DivisionData

    hp = module.hparams
    return DivisionData(format=module.format.name, tokenizer_name=tokenizer_name(hp.model, hp.tokenizer),
                        max_length=module.window, **settings)
