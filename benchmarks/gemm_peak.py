"""The machine's own matrix-multiply peak, the yardstick for MFU: the best FLOP/s that torch.matmul reaches on
square and model-shaped products, in fp32 and bf16, with the threads torch uses (or on a GPU, with larger squares
too; fp32 there is true fp32, as Lightning's `32-true` runs it, not TF32).

    python -m benchmarks.gemm_peak [cuda]     # prints JSON
"""

from __future__ import annotations

import json
import sys
import time

import torch

from longdiv import hardware

# Square products, and the shapes of SmolLM2-135M's MLP (width 576, 1536) on a block of 1024 tokens.
SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048), (1024, 576, 1536), (1024, 1536, 576)]
GPU_SHAPES = [*SHAPES, (4096, 4096, 4096), (8192, 8192, 8192)]


def flops_per_second(m: int, k: int, n: int, dtype: torch.dtype, device: str = "cpu", seconds: float = 1.0) -> float:
    a, b = torch.randn(m, k, device=device).to(dtype), torch.randn(k, n, device=device).to(dtype)
    # A GPU queues products without waiting: time whole groups, each ended by a synchronize.
    sync, group = (torch.cuda.synchronize, 10) if device == "cuda" else (lambda: None, 1)
    torch.matmul(a, b)  # warm-up: kernel choice and page faults
    sync()
    runs, start = 0, time.perf_counter()
    while True:
        for _ in range(group):
            torch.matmul(a, b)
        sync()
        runs += group
        if (elapsed := time.perf_counter() - start) >= seconds:
            return 2 * m * k * n * runs / elapsed


def peak(dtype: torch.dtype, device: str = "cpu") -> dict:
    shapes = GPU_SHAPES if device == "cuda" else SHAPES
    rates = {f"{m}x{k}x{n}": flops_per_second(m, k, n, dtype, device) for m, k, n in shapes}
    return {"peak_flops": max(rates.values()), "by_shape": rates}


def measure(device: str = "cpu") -> dict:
    found = {"threads": torch.get_num_threads(), "device": device, "machine": hardware.machine(device).as_dict()}
    if device == "cuda":
        found["gpu"] = torch.cuda.get_device_name()
    return found | {"fp32": peak(torch.float32, device), "bf16": peak(torch.bfloat16, device)}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else "cpu"), indent=2))
