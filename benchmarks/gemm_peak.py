"""The machine's own matrix-multiply peak, the yardstick for MFU: the best FLOP/s that torch.matmul reaches on
square and model-shaped products, in fp32 and bf16, with the threads torch uses.

    python benchmarks/gemm_peak.py            # prints JSON
"""

from __future__ import annotations

import json
import time

import torch

# Square products, and the shapes of SmolLM2-135M's MLP (width 576, 1536) on a block of 1024 tokens.
SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048), (1024, 576, 1536), (1024, 1536, 576)]


def flops_per_second(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 1.0) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    torch.matmul(a, b)  # warm-up: kernel choice and page faults
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        torch.matmul(a, b)
        runs += 1
    return 2 * m * k * n * runs / elapsed


def peak(dtype: torch.dtype) -> dict:
    rates = {f"{m}x{k}x{n}": flops_per_second(m, k, n, dtype) for m, k, n in SHAPES}
    return {"peak_flops": max(rates.values()), "by_shape": rates}


def measure() -> dict:
    return {"threads": torch.get_num_threads(), "fp32": peak(torch.float32), "bf16": peak(torch.bfloat16)}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
