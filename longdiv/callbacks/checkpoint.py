"""Checkpoints that survive a kill: atomic writes, a `last.ckpt` kept current, and the random state saved with it.

A run killed at any moment leaves `checkpoints/last.ckpt` either as it was or as the new complete file, and
`fit --ckpt_path runs/<run>/checkpoints/last.ckpt` continues that run in its folder exactly where the checkpoint
was taken: weights, optimizer and scheduler, loop progress, the batches already seen this epoch (the
DataModule's loader is resumable) and the random streams.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_dead_partials(path: Path) -> None:
    """Deletes the half-written files that killed writers of `path` left beside it (a kill mid-save skips the
    writer's own clean-up); a file whose writer is still running stays."""
    for partial in path.parent.glob(f".{path.name}.*.partial"):
        pid = partial.name[len(path.name) + 2 : -len(".partial")]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside its target, syncs it to disk, then renames it over the
    target, so a crash mid-save never leaves a truncated checkpoint at the target path.

    Lightning's own writer stages the file in the system temp folder and moves it; across filesystems that move
    is a copy, and a kill during the copy leaves a truncated target. A writer killed mid-save leaves its temporary
    file behind; the next save beside it deletes it.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options; drop them")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_partials(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            with tmp.open("wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        # The rename itself is durable only once the folder's entry is on disk.
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class LastCheckpoint(ModelCheckpoint):
    """Keeps `<dirpath>/last.ckpt` current: every `every_n_train_steps` optimizer steps when given, at the end of
    every training epoch, and when training ends. Keeps no other checkpoints.

    Args:
        dirpath: The run's checkpoint folder.
        every_n_train_steps: Also save mid-epoch after this many optimizer steps; None saves at epoch ends only.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int | None = None):
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, every_n_train_steps=every_n_train_steps,
                         save_on_train_epoch_end=True)

    def on_train_epoch_end(self, trainer, pl_module):
        # ModelCheckpoint saves `last` at an epoch end only after a top-k save, and it keeps no top-k here. Saved
        # even when a step save just ran, so that the file records the finished epoch rather than its last batch.
        if not (trainer.fast_dev_run or trainer.sanity_checking):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, pl_module):
        # A run that stops mid-epoch (max_steps) ends between two saves.
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class RandomState(L.Callback):
    """Saves the torch, Python and NumPy random states in each checkpoint and restores them on resume, so that
    dropout after a resume draws what the uninterrupted run drew. Stored as tensors and plain lists, so the
    checkpoint still loads with `weights_only=True`."""

    def state_dict(self) -> dict[str, Any]:
        version, state, gauss = random.getstate()
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "python": [version, list(state), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        version, state, gauss = state_dict["python"]
        random.setstate((version, tuple(state), gauss))
        kind, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
