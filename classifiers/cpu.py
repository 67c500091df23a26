"""What the CPU offers the inference kernels, named the way torch names its capability levels.

ONNX Runtime's MLAS picks its kernels from cpuid at run time and exposes no name for its choice, so the
classifier reads the same flags: this is what the int8 path runs on (environment variables such as
ATEN_CPU_CAPABILITY change torch's kernels, not these)."""

from __future__ import annotations

import platform
from pathlib import Path


def capability_from_flags(machine: str, flags: set[str]) -> str:
    """AVX512_VNNI / AVX512 / AVX2_VNNI / AVX2 / DEFAULT on x86-64 (+AMX where present); ARM64 (+DOTPROD,
    +I8MM) on aarch64; the machine name elsewhere."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        if "avx512_vnni" in flags or "avx512vnni" in flags:
            name = "AVX512_VNNI"
        elif {"avx512f", "avx512bw"} <= flags:
            name = "AVX512"
        elif "avx2" in flags:
            name = "AVX2_VNNI" if "avx_vnni" in flags else "AVX2"
        else:
            name = "DEFAULT"
        return name + ("+AMX" if "amx_int8" in flags else "")
    if machine in ("aarch64", "arm64"):
        return "ARM64" + "".join(f"+{extra.upper()}" for extra in ("dotprod", "i8mm")
                                 if extra in flags or (extra == "dotprod" and "asimddp" in flags))
    return machine or "unknown"


def cpu_flags() -> set[str]:
    """The first CPU's flags from /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_capability() -> str:
    return capability_from_flags(platform.machine(), cpu_flags())
