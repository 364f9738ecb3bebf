"""Reading a longdiv checkpoint for what it is, without loading its weights: the model and data settings it was
trained with, its data identity, its run's config and the shapes of its tensors. Loading code is refused
(`weights_only`), and a checkpoint whose settings ask for a model of other shapes than its tensors is refused before
any model is made."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace

# Settings linked from others: a checkpoint's values come back through their sources (data.format, model.model).
LINKED = {"model": {"format"}, "data": {"tokenizer_name", "max_length"}}
IDENTITY_KEY = "DivisionData"  # the DataModule's state in a checkpoint (Lightning keys it by the class's name)


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


def read(path: str, weights_only: bool = True) -> dict:
    """A checkpoint's saved settings (`saved`: model and data), data `identity`, the `config` of the run that wrote
    it (None before longdiv kept it) and the `shapes` of its model's tensors, read memory-mapped."""
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
    record = next((state for key, state in (ckpt.get("callbacks") or {}).items() if key.startswith("RunRecord")), {})
    shapes = {k.removeprefix("model."): tuple(v.shape) for k, v in (ckpt.get("state_dict") or {}).items()
              if k.startswith("model.")}
    return {"saved": saved, "identity": (ckpt.get(IDENTITY_KEY) or {}).get("identity"),
            "config": record.get("config"), "shapes": shapes}


def check_shapes(path: str, model: dict, shapes: dict[str, tuple[int, ...]]) -> None:
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
