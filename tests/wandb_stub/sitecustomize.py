"""Loaded by a test's child process (this folder first on PYTHONPATH): W&B's run start is replaced by a line saying
the mode it would run in, then the process ends, so a run that would go online never reaches the network. Any
connection before it ends the process too. With WANDB_STUB_UNREACHABLE set, starting an online run fails as it does
when W&B's server cannot be reached."""

import os
import socket

import wandb
from wandb.sdk import wandb_setup


def init(**kwargs):
    # WandbLogger sets WANDB_MODE=dryrun when offline; W&B reads it unless its settings were loaded before.
    loaded = wandb_setup.singleton().settings_if_loaded
    mode = loaded.mode if loaded else os.environ.get("WANDB_MODE", "online")
    if mode == "online" and os.environ.get("WANDB_STUB_UNREACHABLE"):  # what W&B raises when its server is away
        raise wandb.errors.CommError(f"Run initialization has timed out after {os.environ['WANDB_INIT_TIMEOUT']} sec.")
    print(f"wandb.init mode={mode}", flush=True)
    os._exit(0)


def connect(self, address):
    print(f"connection attempted: {address}", flush=True)
    os._exit(3)


wandb.init = init
socket.socket.connect = socket.socket.connect_ex = connect
