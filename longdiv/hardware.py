"""What the machine is, and the precision `--model.precision auto` picks for it.

bf16 pays only where the hardware multiplies bf16 natively: a CUDA GPU that supports it, or a CPU with AVX-512 BF16
or AMX. Elsewhere (an x86 CPU without them) torch emulates bf16 products, many times slower than fp32, so `auto`
keeps fp32 there. docs/speed.md has the measured ratios.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 dot products


@dataclass(frozen=True)
class Machine:
    """The device a run computes on: `cpu` or `cuda`, its model name, whether it has fast bf16, and for a CPU its
    family, model and stepping numbers (`cpu_id`): a cloud CPU's name can be the same for two kinds ("Intel(R)
    Xeon(R) Processor" for Sapphire and Emerald Rapids, with or without AMX passed through), its numbers and
    features are not."""

    device: str
    model: str
    fast_bf16: bool
    bf16_features: tuple[str, ...] = ()
    cpu_id: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def cpu(cpuinfo: str | None = None) -> Machine:
    """This CPU, read from /proc/cpuinfo (or the text given)."""
    info = _cpuinfo() if cpuinfo is None else cpuinfo
    fields: dict[str, str] = {}  # each field's first value: the first processor's
    for key, _, value in (line.partition(":") for line in info.splitlines()):
        fields.setdefault(key.strip(), value.strip())
    features = tuple(flag for flag in BF16_CPU_FLAGS if flag in fields.get("flags", "").split())
    cpu_id = " ".join(f"{key.removeprefix('cpu ')} {fields[key]}" for key in ("cpu family", "model", "stepping")
                      if key in fields)
    model = fields.get("model name") or platform.processor() or platform.machine()
    return Machine("cpu", model, bool(features), features, cpu_id)


def allocator(maps: str | None = None) -> str:
    """The C memory allocator this process runs on, read from its memory maps (or the text given): `tcmalloc` or
    `jemalloc` where one was preloaded (`LD_PRELOAD`), else `glibc`. It sets the speed of CPU training, not its
    numbers (docs/speed.md, "The memory allocator")."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            maps = ""
    return next((name for name in ("tcmalloc", "jemalloc") if f"lib{name}" in maps), "glibc")


def machine(device: torch.device | str = "cpu") -> Machine:
    """The machine behind `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return Machine("cuda", torch.cuda.get_device_name(device), torch.cuda.is_bf16_supported())
    return cpu()


def check(precision: str) -> str:
    """`precision` if it is one of PRECISIONS, else a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"model.precision is {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def resolve(precision: str, found: Machine) -> str:
    """`fp32` or `bf16`: what `precision` means on `found`; `auto` is bf16 exactly where bf16 is fast."""
    check(precision)
    if precision == "auto":
        return "bf16" if found.fast_bf16 else "fp32"
    return precision
