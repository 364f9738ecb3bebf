"""The speed measurements' helpers: the gemm timer that every MFU figure divides by."""

import torch

from benchmarks import gemm_peak


def test_gemm_timer_counts_every_product_over_the_time_it_measured(monkeypatch):
    clock = {"now": 100.0}
    calls = []
    real = torch.matmul

    def counted(a, b):  # each product takes exactly 0.01 s of the fake clock
        calls.append(1)
        clock["now"] += 0.01
        return real(a, b)

    monkeypatch.setattr(torch, "matmul", counted)
    monkeypatch.setattr(gemm_peak.time, "perf_counter", lambda: clock["now"])
    rate = gemm_peak.flops_per_second(32, 16, 8, torch.float32, seconds=0.05)
    timed = len(calls) - 1  # the first product is the warm-up, outside the timed span
    assert timed == 5
    assert abs(rate - 2 * 32 * 16 * 8 * timed / (timed * 0.01)) < 1e-6 * rate
