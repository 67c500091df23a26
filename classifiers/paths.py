"""Which inference path runs the shipped model on this machine, chosen by measuring, not by assuming.

Candidates: ONNX Runtime int8 (fast wherever MLAS has int8 kernels: AVX2, AVX-512, VNNI, ARM), ONNX Runtime
fp32, and the unquantised PyTorch model. At the first load on a machine each runs the same short batch of
brand posts, interleaved so a busy neighbour slows them alike, and the fastest is kept; the choice is
cached beside the built graphs, keyed by CPU capability and thread count, so later loads skip it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol

from classifiers import onnx_model
from classifiers.cpu import cpu_capability
from classifiers.tokens import FastTokenizer, token_ids

log = logging.getLogger(__name__)

PATHS = ("onnxruntime-int8", "onnxruntime-fp32", "torch-fp32")  # also the order of preference on a tie
_ROUNDS = 3
# Typical brand posts, 6 to 60 tokens: what the daemon labels all day.
SAMPLE_POSTS = (
    "@user my order never arrived and nobody answers the chat, I want a refund",
    "love the new dark mode, great job",
    "@user does the starter plan include phone support?",
    "you should add an export to CSV button, the reports are useless without it",
    "ok",
    "The app crashes every time I open settings since the last update. Third day in a row. "
    "I've reinstalled twice, cleared the cache and nothing helps. Please fix it or give me my money back.",
    "Honestly the best customer service I've had in years, Maria sorted everything in five minutes",
    "is the store open on sunday",
    "Switched our whole team to @user last quarter: onboarding took a day and support replied within the hour",
    "2 stars. It works, mostly, but the sync is slow and the widgets keep disappearing",
    "Outage again?? status page says all good but nothing loads for me",
    "why was my card charged twice for one subscription",
)


class Runner(Protocol):
    name: str
    description: str

    def capability(self) -> str: ...

    def logits(self, rows: list[list[int]]) -> tuple[list[list[float]], list[list[float]], list[float]]: ...


@dataclass(frozen=True)
class Choice:
    path: str
    rates: dict[str, float]  # measured mentions/s per candidate; empty when the path was forced


def choose(rates: Mapping[str, float]) -> str:
    """The fastest measured path; a tie goes to the earlier one in PATHS."""
    if not rates:
        raise ValueError("no inference path could be measured")
    return max(rates, key=lambda path: (rates[path], -PATHS.index(path)))


def measure(runners: Mapping[str, Runner], rows: list[list[int]],
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Mentions/s per runner over `rows`: one untimed pass each (over the first few rows), then the best of
    _ROUNDS interleaved passes."""
    for runner in runners.values():
        runner.logits(rows[: len(SAMPLE_POSTS)])
    best = dict.fromkeys(runners, 0.0)
    for _ in range(_ROUNDS):
        for path, runner in runners.items():
            started = clock()
            runner.logits(rows)
            best[path] = max(best[path], len(rows) / max(clock() - started, 1e-9))
    return {path: round(rate, 1) for path, rate in best.items()}


def machine_key(threads: int) -> str:
    """What makes a measurement valid elsewhere: CPU capability, torch/oneDNN/MKL overrides, thread count."""
    overrides = "-".join(os.environ.get(name, "")
                         for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"))
    return f"{cpu_capability()}-{overrides.strip('-') or 'native'}-t{threads}".replace("/", "_")


def _read_choice(entry: Path | None, key: str) -> Choice | None:
    try:
        data = json.loads((entry / f"choice-{key}.json").read_text()) if entry else None
    except (OSError, ValueError):
        return None
    if not data or data.get("path") not in PATHS:
        return None
    return Choice(data["path"], data.get("rates", {}))


def _write_choice(entry: Path | None, key: str, choice: Choice) -> None:
    """Atomic (temporary file renamed into place); a read-only cache just measures again next load."""
    if entry is None:
        return
    try:
        with tempfile.NamedTemporaryFile("w", dir=entry, prefix=".choice-", delete=False) as out:
            json.dump({"path": choice.path, "rates": choice.rates}, out)
        os.replace(out.name, entry / f"choice-{key}.json")
    except OSError as exc:
        log.info("could not cache the classifier path choice in %s: %s", entry, exc)


def load_runner(model_dir: Path, threads: int, forced: str | None = None) -> tuple[Runner, FastTokenizer, Choice]:
    """The runner for `forced`, or the fastest path here (cached choice, else measured now). Building the
    graphs and measuring needs torch and the fp32 model; a separate process does it when the cache is
    writable, so a daemon's own memory holds only the path it runs."""
    if forced is not None and forced not in PATHS:
        raise ValueError(f"unknown inference path {forced!r}; choose one of {', '.join(PATHS)}")
    tokenizer = FastTokenizer()
    if forced != "torch-fp32":
        key = onnx_model.artifact_key(model_dir)
        graphs = onnx_model.cached_graphs(key)
        choice = Choice(forced, {}) if forced else _read_choice(graphs.entry if graphs else None, machine_key(threads))
        if (graphs is None or choice is None) and onnx_model.cache_writable() and _prepare_in_child(model_dir, threads):
            graphs = onnx_model.cached_graphs(key)
            choice = choice or _read_choice(graphs.entry if graphs else None, machine_key(threads))
        if graphs is not None and choice is not None:
            if choice.path == "torch-fp32":  # measured fastest here earlier
                return _load_in_process(model_dir, threads, choice.path)[0], tokenizer, choice
            return onnx_model.OrtRunner(choice.path, graphs.files[choice.path], threads), tokenizer, choice
    runner, choice = _load_in_process(model_dir, threads, forced)
    return runner, tokenizer, choice


def _prepare_in_child(model_dir: Path, threads: int) -> bool:
    """Runs `python -m classifiers.paths MODEL_DIR THREADS`, which fills the cache; False if it failed."""
    command = [sys.executable, "-m", "classifiers.paths", str(model_dir), str(threads)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    log.info("building the classifier's ONNX graphs and measuring its paths (once per model and machine)")
    try:
        subprocess.run(command, env=environment, check=True, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log.warning("preparing the classifier in a separate process failed (%s); doing it in this one%s",
                    exc, (": " + detail.strip().splitlines()[-1]) if detail.strip() else "")
        return False
    return True


def _load_in_process(model_dir: Path, threads: int, forced: str | None) -> tuple[Runner, Choice]:
    """Builds the graphs if no cache holds them, then loads `forced`, or measures every path and keeps the
    fastest. Torch and the fp32 model are loaded only for the torch path, or to measure it."""
    graphs = None
    if forced != "torch-fp32":
        key = onnx_model.artifact_key(model_dir)
        graphs = onnx_model.cached_graphs(key)
        if graphs is None:
            started = time.monotonic()
            graphs = onnx_model.build_graphs(model_dir, key)
            log.info("built the ONNX graphs for %s in %.1f s", model_dir, time.monotonic() - started)
        if forced is not None:
            return onnx_model.OrtRunner(forced, graphs.files[forced], threads), Choice(forced, {})
    from classifiers.torch_model import TorchRunner, load_inference_model

    torch_runner = TorchRunner(load_inference_model(model_dir), threads)
    if forced == "torch-fp32":
        return torch_runner, Choice(forced, {})
    assert graphs is not None
    runners: dict[str, Runner] = {path: onnx_model.OrtRunner(path, graphs.files[path], threads)
                                  for path in onnx_model.GRAPHS}
    runners["torch-fp32"] = torch_runner
    tokenizer = FastTokenizer()
    rates = measure(runners, [token_ids(tokenizer, text) for text in SAMPLE_POSTS * 2])
    choice = Choice(choose(rates), rates)
    log.info("classifier paths measured (mentions/s): %s; using %s", rates, choice.path)
    _write_choice(graphs.entry, machine_key(threads), choice)
    return runners[choice.path], choice


def main() -> None:
    """The child `_prepare_in_child` starts: build, measure and cache for MODEL_DIR and THREADS. Graphs still
    to build are built by a third process while this one imports torch, which on two cores takes a
    second off a machine's first load."""
    model_dir, threads = Path(sys.argv[1]), int(sys.argv[2])
    builder = None
    if onnx_model.cached_graphs(onnx_model.artifact_key(model_dir)) is None:
        builder = subprocess.Popen([sys.executable, "-m", "classifiers.onnx_model", str(model_dir)])
    import classifiers.torch_model  # noqa: F401  (the slow import, overlapping the build)

    if builder is not None and builder.wait() != 0:
        log.warning("building the ONNX graphs in a separate process failed; building them here")
    _load_in_process(model_dir, threads, None)


if __name__ == "__main__":
    main()
