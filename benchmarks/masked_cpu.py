"""Runs a command on this CPU as if it were an older one: AVX2 only, or AVX-512 without VNNI and AMX.

    python benchmarks/masked_cpu.py avx2 -- python benchmarks/classifier.py --no-accuracy
    python benchmarks/masked_cpu.py avx512 -- .venv/bin/mentionwatch demo

Libraries pick their kernels from cpuid: ONNX Runtime's MLAS, oneDNN and MKL have no switch that holds them
to AVX2 on a newer CPU. `cpu_mask.c`, preloaded into the command, traps every cpuid (Linux cpuid faulting,
flag `cpuid_fault` in /proc/cpuinfo: Intel since Ivy Bridge, and virtual machines that pass it through) and
hides the newer instruction sets, so every library runs the kernels it would run on the older CPU, at this
CPU's clock and memory speed. What it cannot change: glibc chose its string functions before the mask
starts, /proc/cpuinfo still lists this CPU's flags (the classifier's capability name comes from there), and
the older CPU's own cores are slower or faster than this one's. `torch.backends.cpu.get_cpu_capability()`
inside the command reads the masked cpuid, so the benchmarks' headers show the level that took effect.
Masking needs gcc (the shim is built on each run, a second) and x86-64 Linux. A process that installs its
own SIGSEGV handler after start-up (Python's faulthandler: `-X faulthandler`, pytest) dies at its next cpuid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SHIM_SOURCE = Path(__file__).resolve().parent / "cpu_mask.c"
LEVELS = ("avx2", "avx512")


def _compiler() -> str | None:
    return shutil.which("gcc") or shutil.which("cc")


def unavailable() -> str | None:
    """Why this machine cannot mask cpuid, or None when it can."""
    if os.uname().machine != "x86_64":
        return f"x86-64 only (this machine is {os.uname().machine})"
    try:
        faulting = "cpuid_fault" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        faulting = False
    if not faulting:
        return "this CPU or kernel has no cpuid faulting (no `cpuid_fault` in /proc/cpuinfo)"
    if _compiler() is None:
        return "no C compiler (gcc or cc) to build cpu_mask.c"
    return None


def build_shim(folder: Path) -> Path:
    shim = folder / "cpu_mask.so"
    subprocess.run([_compiler(), "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHIM_SOURCE)], check=True)
    return shim


def masked_environment(level: str, shim: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the shim preloaded at `level`."""
    environment = dict(os.environ if base is None else base)
    preload = environment.get("LD_PRELOAD", "")
    environment["LD_PRELOAD"] = f"{shim} {preload}".strip()
    environment["CPU_MASK"] = level
    return environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("level", choices=LEVELS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    reason = unavailable()
    if reason:
        sys.exit(f"masked_cpu: {reason}")
    with tempfile.TemporaryDirectory(prefix="masked-cpu-") as folder:
        shim = build_shim(Path(folder))
        sys.exit(subprocess.run(command, env=masked_environment(args.level, shim)).returncode)


if __name__ == "__main__":
    main()
