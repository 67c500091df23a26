"""Does the int8 path label alike on an AVX2-only CPU? Runs it here and under `qemu-x86_64 -cpu Haswell`.

    python benchmarks/emulated_cpu.py [--cpu Haswell] [--posts 100]

ONNX Runtime's MLAS picks its kernels from cpuid, and no switch holds it to AVX2 on a newer CPU. qemu-user
(Debian: `apt-get install qemu-user`) emulates a CPU whose cpuid has AVX2 and no AVX-512, so MLAS runs its
AVX2 kernels there: this compares their logits and labels with this machine's on the project's own
validation posts. Emulation is hundreds of times slower than the CPU it imitates, so it measures agreement,
never speed. The capability columns are what torch reads from cpuid in each process (the classifier's own
name for the CPU comes from /proc/cpuinfo, which qemu-user passes through from the host).
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


def compare(native: dict, emulated: dict) -> None:
    print(f"{'':10s}{'capability':>12s}{'posts/s':>10s}")
    for name, run in (("native", native), ("emulated", emulated)):
        print(f"{name:10s}{run['capability']:>12s}{run['rate']:>10.1f}")
    for head in ("sentiment", "intent", "reply"):
        here, there = native[head], emulated[head]
        if head == "reply":
            same = sum((a >= 0) == (b >= 0) for a, b in zip(here, there))
            gap = max(abs(a - b) for a, b in zip(here, there))
        else:
            same = sum(argmax(a) == argmax(b) for a, b in zip(here, there))
            gap = max(abs(x - y) for a, b in zip(here, there) for x, y in zip(a, b))
        print(f"{head:10s} same label on {same} of {len(here)} posts; largest logit difference {gap:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", default="Haswell", help="qemu CPU model (Haswell: AVX2, FMA, no AVX-512)")
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        label_posts(args.posts, args.child)
        return
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        sys.exit("qemu-x86_64 not found: install qemu-user (Debian/Ubuntu: apt-get install qemu-user)")
    command = [sys.executable, __file__, "--posts", str(args.posts), "--child"]
    with tempfile.TemporaryDirectory() as folder:
        native, emulated = Path(folder) / "native.json", Path(folder) / "emulated.json"
        subprocess.run([*command, str(native)], check=True)
        subprocess.run([qemu, "-cpu", args.cpu, *command, str(emulated)], check=True, stderr=subprocess.DEVNULL)
        compare(json.loads(native.read_text()), json.loads(emulated.read_text()))


if __name__ == "__main__":
    main()
