"""The precision `auto` picks: bf16 only where the machine multiplies bf16 natively."""

import pytest

from longdiv import hardware

ZEN4 = "model name\t: AMD EPYC 9R14\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
ZEN3 = "model name\t: AMD EPYC 7R13\nflags\t\t: fpu sse2 avx2 fma\n"
SAPPHIRE = "model name\t: Intel(R) Xeon(R) Platinum 8488C\nflags\t\t: avx512f amx_bf16 amx_tile amx_int8\n"


def test_cpu_features_are_read_from_cpuinfo():
    assert hardware.cpu(ZEN4) == hardware.Machine("cpu", "AMD EPYC 9R14", True, ("avx512_bf16",))
    assert hardware.cpu(SAPPHIRE).bf16_features == ("amx_bf16",)
    assert hardware.cpu(ZEN3) == hardware.Machine("cpu", "AMD EPYC 7R13", False, ())


def test_two_cpus_of_one_name_are_told_apart_by_their_numbers():
    # A cloud Xeon named alike with and without AMX passed through: its family, model and stepping tell them apart.
    header = ("processor\t: {}\ncpu family\t: 6\nmodel\t\t: {}\nmodel name\t: Intel(R) Xeon(R) Processor\n"
              "stepping\t: {}\n")
    emerald = "".join(header.format(i, 207, 2) + "flags\t\t: avx512f avx512_vnni\n\n" for i in range(2))
    sapphire = header.format(0, 143, 8) + "flags\t\t: avx512f avx512_bf16 amx_bf16\n"
    assert hardware.cpu(emerald) == hardware.Machine("cpu", "Intel(R) Xeon(R) Processor", False, (),
                                                     "family 6 model 207 stepping 2")
    assert hardware.cpu(sapphire).cpu_id == "family 6 model 143 stepping 8"
    assert hardware.cpu(ZEN3).cpu_id == ""  # fields it does not give stay out


def test_auto_picks_fp32_without_bf16_hardware_and_bf16_with_it():
    assert hardware.resolve("auto", hardware.cpu(ZEN3)) == "fp32"
    assert hardware.resolve("auto", hardware.cpu(ZEN4)) == "bf16"
    assert hardware.resolve("auto", hardware.cpu(SAPPHIRE)) == "bf16"
    assert hardware.resolve("auto", hardware.Machine("cuda", "NVIDIA H200", True)) == "bf16"
    assert hardware.resolve("bf16", hardware.cpu(ZEN3)) == "bf16"  # asked for on purpose
    assert hardware.resolve("fp32", hardware.cpu(ZEN4)) == "fp32"


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        hardware.resolve("fp16", hardware.cpu(ZEN4))


def test_the_allocator_is_read_from_the_memory_maps():
    lib = "7f1c2a000000-7f1c2a02a000 r--p 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/{}\n"
    libc = lib.format("libc.so.6")
    assert hardware.allocator(libc + lib.format("libtcmalloc_minimal.so.4.5.10")) == "tcmalloc"
    assert hardware.allocator(lib.format("libjemalloc.so.2") + libc) == "jemalloc"
    assert hardware.allocator(libc) == "glibc"
