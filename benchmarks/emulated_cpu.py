"""Does the int8 path label alike on an older CPU? Runs it here and again on a CPU that offers only AVX2
(or AVX-512 without VNNI), and compares logits and labels on the project's own validation posts.

    python benchmarks/emulated_cpu.py [--as avx2|avx512] [--via mask|qemu] [--posts N]

ONNX Runtime's MLAS picks its kernels from cpuid, and no switch holds it to AVX2 on a newer CPU. Two ways to
show it an older one: `--via mask` (the default where the CPU has cpuid faulting) preloads
`benchmarks/cpu_mask.c` (see masked_cpu.py), so the older CPU's kernels run at full speed and the rates
beside the labels are real; `--via qemu` runs under `qemu-x86_64 -cpu Haswell` or `Skylake-Server`
(Debian: `apt-get install qemu-user`), which works anywhere but emulates hundreds of times slower, so its
rate says nothing. The capability columns are what torch reads from cpuid in each process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.masked_cpu import build_shim, masked_environment, unavailable  # noqa: E402


def label_posts(count: int, out: Path) -> None:
    """Child: int8 logits for the first `count` own validation posts, written as JSON."""
    import torch

    from classifiers.data import OWN_INTENT_DIR, normalise, read_jsonl
    from classifiers.paths import load_runner
    from classifiers.tokens import MODEL_DIR, token_ids

    texts = [row["text"] for row in read_jsonl(OWN_INTENT_DIR / "validation.jsonl")][:count]
    runner, tokenizer, _ = load_runner(MODEL_DIR, 1, "onnxruntime-int8")
    started = time.perf_counter()
    sentiment, intent, reply = runner.logits([token_ids(tokenizer, normalise(text), 128) for text in texts])
    rate = len(texts) / (time.perf_counter() - started)
    out.write_text(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "rate": rate,
                               "sentiment": sentiment, "intent": intent, "reply": reply}))


def argmax(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)


def agreement(native: dict, older: dict) -> dict[str, tuple[int, float]]:
    """Per head: on how many posts the two runs give the same label, and their largest logit difference."""
    result = {}
    for head in ("sentiment", "intent", "reply"):
        here, there = native[head], older[head]
        if head == "reply":
            same = sum((a >= 0) == (b >= 0) for a, b in zip(here, there))
            gap = max(abs(a - b) for a, b in zip(here, there))
        else:
            same = sum(argmax(a) == argmax(b) for a, b in zip(here, there))
            gap = max(abs(x - y) for a, b in zip(here, there) for x, y in zip(a, b))
        result[head] = (same, gap)
    return result


def compare(native: dict, older: dict) -> None:
    print(f"{'':10s}{'capability':>12s}{'posts/s':>10s}")
    for name, run in (("native", native), ("older CPU", older)):
        print(f"{name:10s}{run['capability']:>12s}{run['rate']:>10.1f}")
    for head, (same, gap) in agreement(native, older).items():
        print(f"{head:10s} same label on {same} of {len(native[head])} posts; largest logit difference {gap:.3f}")


QEMU_MODELS = {"avx2": "Haswell", "avx512": "Skylake-Server"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as", dest="level", choices=tuple(QEMU_MODELS), default="avx2")
    parser.add_argument("--via", choices=("mask", "qemu"), help="default: mask where the CPU has cpuid faulting")
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        label_posts(args.posts, args.child)
        return
    via = args.via or ("qemu" if unavailable() else "mask")
    command = [sys.executable, __file__, "--posts", str(args.posts), "--child"]
    with tempfile.TemporaryDirectory() as folder:
        native, older = Path(folder) / "native.json", Path(folder) / "older.json"
        subprocess.run([*command, str(native)], check=True)
        if via == "mask":
            environment = masked_environment(args.level, build_shim(Path(folder)))
            subprocess.run([*command, str(older)], check=True, env=environment)
        else:
            qemu = shutil.which("qemu-x86_64")
            if qemu is None:
                sys.exit("qemu-x86_64 not found: install qemu-user (Debian/Ubuntu: apt-get install qemu-user)")
            subprocess.run([qemu, "-cpu", QEMU_MODELS[args.level], *command, str(older)], check=True,
                           stderr=subprocess.DEVNULL)
        print(f"older CPU: {args.level} via {via}")
        compare(json.loads(native.read_text()), json.loads(older.read_text()))


if __name__ == "__main__":
    main()
