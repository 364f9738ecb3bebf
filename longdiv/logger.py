"""The W&B logger runs use: Lightning's, falling back to logging offline when W&B cannot be reached, so that a run
that meant to sync goes on (and `wandb sync` uploads it later) instead of waiting out W&B's own time-out and failing."""

from __future__ import annotations

import os
import sys

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment


class WandbLogger(LightningWandbLogger):
    """Lightning's `WandbLogger` that gives W&B `init_timeout` seconds to start an online run, then logs offline.

    Args:
        init_timeout: Seconds to wait for W&B's server when starting an online run (W&B's own default is 90).
    """

    def __init__(self, *args, init_timeout: float = 15.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_timeout = init_timeout

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is not None or self._offline:
            return super().experiment
        from wandb import errors

        os.environ.setdefault("WANDB_INIT_TIMEOUT", str(self.init_timeout))
        try:
            return super().experiment
        except (errors.Error, OSError) as err:  # W&B's CommError (its time-out), a refused key, the network
            print(f"warning: W&B could not start an online run ({' '.join(str(err).split())[:200]}); logging offline "
                  f"instead: `wandb sync {self.save_dir}/wandb/offline-run-*` uploads it later", file=sys.stderr,
                  flush=True)
            self._offline, self._experiment = True, None
            return super().experiment
