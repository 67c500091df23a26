"""Classifier speed, memory and accuracy: every inference path the transformer classifier can take, beside
the VADER lexicon baseline, side by side in one run.

    python benchmarks/classifier.py [--data ../shared/data] [--no-accuracy] [--threads 2]

Texts are the project's own brand-directed validation posts (tweet-length, shipped in the repo), so the
speed figures need no external data. The run uses a fresh, empty classifier cache: a first child process
loads the default classifier, which builds the ONNX graphs and measures which path to run (its load
time is a new machine's first load); a second loads it from the cache (every later start).
Then every path is timed in a fresh subprocess, --rounds times in turn (path A, B, C, A, B, C, ...), and
each path's best round is shown: on a shared machine a busy neighbour then slows one round, not one path.
Peak RSS and scores come from one more subprocess per path that runs the validation suite (accuracy needs
the shared data folder and is skipped without it).

To measure what an older x86-64 CPU gets, run it under `benchmarks/masked_cpu.py avx2` (or `avx512`): every
library then sees a cpuid without the newer instruction sets and runs that CPU's kernels, ONNX Runtime's
MLAS included, which no environment variable holds back. The header shows what each library reports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifiers.data import DEFAULT_DATA_DIR, OWN_INTENT_DIR, read_jsonl  # noqa: E402
from classifiers.paths import PATHS  # noqa: E402

KINDS = (*PATHS, "lexicon")
BASELINE = "torch-fp32"


def make(kind: str, threads: int):
    if kind == "lexicon":
        from classifiers.lexicon import LexiconClassifier

        return LexiconClassifier()
    from classifiers.transformer import TransformerClassifier

    if kind == "default":
        return TransformerClassifier(threads=threads)
    return TransformerClassifier(path=kind, threads=threads, quantize=kind != BASELINE)


def throughput(classifier, texts: list[str], batch_size: int) -> float:
    """Mentions per second over `texts`, after one untimed pass (a long-running daemon's speed)."""

    def one_pass() -> float:
        started = time.perf_counter()
        for start in range(0, len(texts), batch_size):
            classifier.classify(texts[start : start + batch_size])
        return time.perf_counter() - started

    one_pass()
    return len(texts) / one_pass()


def measure(kind: str, data_dir: Path | None, threads: int) -> dict:
    """Runs in the child process: load, then either time batch 1 and 32 or (with data) score; peak RSS."""
    texts = [row["text"] for row in read_jsonl(OWN_INTENT_DIR / "validation.jsonl")]
    started = time.perf_counter()
    classifier = make(kind, threads)
    result = {"classifier": kind, "version": classifier.version, "load_s": round(time.perf_counter() - started, 2),
              "runtime": getattr(classifier, "runtime", "pure Python"), "rates": getattr(classifier, "rates", {}),
              "path": getattr(classifier, "path", kind)}
    if kind == "default":
        result["peak_rss_mb"] = peak_rss_mb()
        return result
    if data_dir is None:
        result["batch1_per_s"] = round(throughput(classifier, texts[:150], 1), 1)
        result["batch32_per_s"] = round(throughput(classifier, texts * 4, 32), 1)
    else:
        from classifiers.metrics import evaluate_suite

        reports = evaluate_suite(classifier, data_dir)
        result["scores"] = {name: report.summary() for name, report in reports.items()}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM on Linux: ru_maxrss would start at the parent's size (fork copies it)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kilobytes / 1024, 1)


def headline(scores: dict) -> dict[str, float]:
    """The figures the acceptance criteria name, one per validation set."""
    return {
        "tweeteval macro-recall": scores["tweeteval_sentiment"]["macro_recall"],
        "complaints macro-F1": scores["complaints"]["macro_f1"],
        "app reviews 3-class macro-F1": scores["app_reviews_3class"]["macro_f1"],
        "own intent macro-F1": scores["own_intent"]["macro_f1"],
        "airline macro-F1": scores["airline_sentiment"]["macro_f1"],
    }


def capabilities() -> str:
    """What each runtime sees: torch's kernel level, oneDNN's ISA cap, MKL's ISA, and the cpuid level ONNX
    Runtime's MLAS dispatches on."""
    import torch

    from classifiers.cpu import cpu_capability

    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "unset")
    mkl = os.environ.get("MKL_ENABLE_INSTRUCTIONS", "unset")
    masked = os.environ.get("CPU_MASK")
    mlas = (f"{masked.upper()} (cpuid masked by benchmarks/masked_cpu.py; /proc/cpuinfo, and so the runtime "
            f"column, still says {cpu_capability()})" if masked else cpu_capability())
    return (f"torch.backends.cpu.get_cpu_capability(): {torch.backends.cpu.get_cpu_capability()}; "
            f"ONEDNN_MAX_CPU_ISA={onednn}; MKL_ENABLE_INSTRUCTIONS={mkl} (MKL: {mkl_isa()}); "
            f"onnxruntime {onnxruntime_version()} MLAS dispatches on cpuid: {mlas}")


def mkl_isa() -> str:
    """The instruction set MKL says it runs (its verbose banner), asked of a fresh process with this environment."""
    probe = "import torch; torch.randn(64, 64) @ torch.randn(64, 64)"
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "MKL_VERBOSE": "1"},
                         capture_output=True, text=True).stdout
    banner = next((line for line in out.splitlines() if line.startswith("MKL_VERBOSE oneMKL")), "")
    found = re.search(r"\(Intel\(R\) (AVX[-\w]*)\)", banner)
    return found.group(1) if found else "not reported"


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def child(kind: str, data_dir: Path | None, threads: int, data: Path) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--data", str(data), "--threads", str(threads)]
    if data_dir is None:
        command.append("--no-accuracy")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def load_average() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--no-accuracy", action="store_true", help="speed and memory only")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per classifier (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per path, best kept (default 3)")
    parser.add_argument("--child", choices=(*KINDS, "default"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_dir = None if args.no_accuracy or not (args.data / "tweeteval_sentiment").is_dir() else args.data
    if args.child:
        print(json.dumps(measure(args.child, data_dir, args.threads)))
        return
    print(capabilities())
    print(f"at the start: {load_average()} ({os.cpu_count()} CPUs)")
    # Every child uses a fresh, empty classifier cache: the first load below is a new machine's (graphs built,
    # paths measured), the second a daemon's every later start, and every figure is this code's graphs.
    with tempfile.TemporaryDirectory(prefix="mentionwatch-bench-cache-") as cache:
        os.environ["MENTIONWATCH_CACHE_DIR"] = cache
        run(args, data_dir)
    print(f"at the end: {load_average()}")


def run(args: argparse.Namespace, data_dir: Path | None) -> None:
    """The benchmark proper, in the parent process."""
    first = child("default", None, args.threads, args.data)
    default = child("default", None, args.threads, args.data)
    print(f"default classifier: {default['version']}: {default['runtime']}; loaded in {first['load_s']} s on "
          f"a first load (empty cache: graphs built, paths measured, mentions/s: {first['rates']}), "
          f"{default['load_s']} s once cached; peak RSS {default['peak_rss_mb']} MB once cached")
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for kind in KINDS:
            result = child(kind, None, args.threads, args.data)
            kept = best.setdefault(kind, result)
            for key in ("batch1_per_s", "batch32_per_s"):
                kept[key] = max(kept[key], result[key])
            kept["load_s"] = min(kept["load_s"], result["load_s"])
            kept["peak_rss_mb"] = max(kept["peak_rss_mb"], result["peak_rss_mb"])
    scored = {kind: child(kind, data_dir, args.threads, args.data) for kind in KINDS} if data_dir else {}
    print()
    print(f"{'path':18}{'runtime':36}{'load s':>8}{'batch 1/s':>11}{'batch 32/s':>12}{'x torch':>9}"
          f"{'peak RSS MB':>13}")
    baseline = best[BASELINE]["batch32_per_s"]
    for kind, r in best.items():
        rss = max(r["peak_rss_mb"], scored[kind]["peak_rss_mb"]) if scored else r["peak_rss_mb"]
        print(f"{kind:18}{r['runtime'][:35]:36}{r['load_s']:>8}{r['batch1_per_s']:>11}"
              f"{r['batch32_per_s']:>12}{r['batch32_per_s'] / baseline:>9.2f}{rss:>13}")
    print(f"(best of {args.rounds} interleaved rounds; threads: {args.threads}"
          + ("; peak RSS includes the validation run)" if scored else ")"))
    if not scored:
        print("accuracy skipped: --no-accuracy, or no shared data folder (pass --data)")
        return
    names = list(headline(scored[KINDS[0]]["scores"]))
    print()
    print(f"{'validation figure':32}" + "".join(f"{kind:>18}" for kind in KINDS))
    for name in names:
        print(f"{name:32}" + "".join(f"{headline(scored[kind]['scores'])[name]:>18.3f}" for kind in KINDS))


if __name__ == "__main__":
    main()
