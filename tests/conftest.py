import os

import pytest
import torch

# Tests never reach the network: no hub look-ups, W&B offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests make their runs under their own folders, never in a runs directory a user keeps for long runs.
os.environ.pop("LONGDIV_RUNS", None)


@pytest.fixture
def one_thread():
    """Single-threaded kernels, as subprocesses with OMP_NUM_THREADS=1 use, so runs compare bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
