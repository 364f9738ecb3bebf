"""The speed measurements' helpers: the gemm timer that every MFU figure divides by."""

import torch

from benchmarks import gemm_peak


def test_gemm_timer_counts_every_product(monkeypatch):
    calls = []
    real = torch.matmul

    def counted(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(torch, "matmul", counted)
    rate = gemm_peak.flops_per_second(32, 16, 8, torch.float32, seconds=0.05)
    timed = len(calls) - 1  # the first product is the warm-up
    assert timed >= 1
    # FLOP/s = 2*m*k*n per timed product over at most the measured time and at least the requested one.
    assert 2 * 32 * 16 * 8 * timed / 5.0 < rate <= 2 * 32 * 16 * 8 * timed / 0.05
