"""The shipped model written straight into an ONNX graph from its tensors, with numpy: no torch, no
transformers, no tracing, so a machine's first load builds it in a second or two.

The graph runs one unpadded text (input_ids of shape [1, tokens], int32) through ONNX Runtime's fused
transformer operators (com.microsoft EmbedLayerNormalization, Attention, SkipLayerNormalization,
BiasGelu): about 30 nodes instead of about 130, which matters because a tweet-length text spends as much
time between operators as in them. It computes what `torch_model.MultiTaskModel` computes: BERT with
erf GELU, mean pooling over the tokens, three linear heads.

When the model folder has activation ranges (`RANGES_FILE`, written by `onnx_model.calibrate`), every
quantised product X @ W is written as (X / s) @ (s W), with s per input channel (SmoothQuant, Xiao et al. 2023):
the same numbers in fp32, but a few outlier channels no longer set the one int8 scale of a whole activation,
so the int8 path lands closer to the unquantised model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from classifiers.tokens import RANGES_FILE, WEIGHTS_FILE, base_model_dir

MS = "com.microsoft"
OUTPUTS = ("sentiment", "intent", "reply")
IR_VERSION = 8  # opset 17's: what every ONNX Runtime that has these operators loads
HEAD_NODES = ("heads",)  # kept in fp32 by quantisation: 9 outputs cost nothing, and they decide the labels
QUANTISED_OPS = ("MatMul", "Attention")
# How much of an activation's outlier range moves into the weights (0: none, 1: all). The weights are
# quantised per output channel and can take more; 0.8 brought int8 logits closest to fp32 on training texts.
SMOOTHING_ALPHA = 0.8


def model_tensors(model_dir: Path, base_dir: Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """The base encoder's tensors under the training model's names (`encoder.…`), overlaid with the shipped
    fine-tuned ones, all fp32; and the base config. Fails naming the file when a tensor is missing."""
    from safetensors.numpy import load_file

    base_dir = base_dir or base_model_dir()
    tensors = {f"encoder.{name}": value for name, value in load_file(str(base_dir / "model.safetensors")).items()}
    weights = model_dir / WEIGHTS_FILE
    tensors.update(load_file(str(weights)))
    config = json.loads((base_dir / "config.json").read_text())
    needed = [f"{head}_head.{part}" for head in ("sentiment", "intent", "reply") for part in ("weight", "bias")]
    missing = [name for name in needed if name not in tensors]
    if missing:
        raise ValueError(f"{weights} lacks trained tensors: {missing[:5]}")
    if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{base_dir / 'config.json'}: only BERT with erf GELU and absolute positions is supported")
    return {name: np.asarray(value, dtype=np.float32) for name, value in tensors.items()
            if value.dtype.kind == "f"}, config


def activation_ranges(model_dir: Path) -> dict[str, np.ndarray]:
    """Per quantised node, the largest |input| per channel seen in calibration; empty when never calibrated."""
    from safetensors.numpy import load_file

    path = model_dir / RANGES_FILE
    return load_file(str(path)) if path.is_file() else {}


def smoothing_scales(input_range: np.ndarray, weight: np.ndarray, alpha: float = SMOOTHING_ALPHA) -> np.ndarray:
    """s per input channel: max|X_j|^alpha / max|W_j|^(1 - alpha), where row j of `weight` meets channel j."""
    weight_range = np.abs(weight).max(axis=1)
    return (np.maximum(input_range, 1e-5) ** alpha / np.maximum(weight_range, 1e-5) ** (1 - alpha)).astype(np.float32)


def build(model_dir: Path, base_dir: Path | None = None, smooth: bool = True):
    """The fp32 `onnx.ModelProto` of the shipped model for one text; `smooth=False` ignores the activation ranges
    (calibration reads the plain graph)."""
    from onnx import TensorProto, helper, numpy_helper

    t, config = model_tensors(model_dir, base_dir)
    ranges = activation_ranges(model_dir) if smooth else {}
    eps = float(config.get("layer_norm_eps", 1e-12))
    heads = int(config["num_attention_heads"])
    initializers: list = []
    nodes: list = []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attributes))
        return output

    def product(op: str, x: str, weight: np.ndarray, output: str, extra: tuple[str, ...] = (), domain: str = "",
                **attributes) -> str:
        """x @ weight (a quantised node), smoothed when calibration gave `output` a range."""
        if output in ranges:
            scales = smoothing_scales(ranges[output], weight)
            x = node("Mul", [x, const(f"{output}_smoothing", 1 / scales)], f"{output}_smoothed")
            weight = weight * scales[:, None]
        return node(op, [x, const(f"{output}_w", weight), *extra], output, domain, **attributes)

    emb = "encoder.embeddings."
    # Token type is always 0: its embedding is folded into the position embeddings.
    positions = t[emb + "position_embeddings.weight"] + t[emb + "token_type_embeddings.weight"][0]
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["input_ids", "", const("word_embeddings", t[emb + "word_embeddings.weight"]),
         const("position_embeddings", positions), "", const("embeddings_gamma", t[emb + "LayerNorm.weight"]),
         const("embeddings_beta", t[emb + "LayerNorm.bias"])],
        ["x0", "mask_index"], name="embeddings", domain=MS, epsilon=eps))
    x = "x0"
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.encoder.layer.{i}."
        qkv = [p + f"attention.self.{part}." for part in ("query", "key", "value")]
        attention = product("Attention", x, np.concatenate([t[q + "weight"].T for q in qkv], 1), f"l{i}_attention",
                            (const(f"l{i}_qkv_b", np.concatenate([t[q + "bias"] for q in qkv])),), MS, num_heads=heads)
        projected = product("MatMul", attention, t[p + "attention.output.dense.weight"].T, f"l{i}_attn_out")
        x = _skip_norm(node, const, projected, x, p + "attention.output.", t, f"l{i}_norm1", eps)
        inner = product("MatMul", x, t[p + "intermediate.dense.weight"].T, f"l{i}_inter")
        biased = node("Add", [inner, const(f"l{i}_inter_b", t[p + "intermediate.dense.bias"])], f"l{i}_inter_biased")
        activated = node("Gelu", [biased], f"l{i}_gelu", MS)
        out = product("MatMul", activated, t[p + "output.dense.weight"].T, f"l{i}_out")
        x = _skip_norm(node, const, out, x, p + "output.", t, f"l{i}_norm2", eps)
    pooled = node("ReduceMean", [x], "pooled", axes=[1], keepdims=0)
    head_names = [f"{name}_head." for name in OUTPUTS]
    logits = node("Gemm", [pooled, const("heads_w", np.concatenate([t[h + "weight"] for h in head_names])),
                           const("heads_b", np.concatenate([t[h + "bias"] for h in head_names]))],
                  HEAD_NODES[0], transB=1)
    sizes = [t[h + "bias"].shape[0] for h in head_names]
    initializers.append(numpy_helper.from_array(np.asarray(sizes, dtype=np.int64), "head_sizes"))
    nodes.append(helper.make_node("Split", [logits, "head_sizes"], list(OUTPUTS), name="split", axis=1))
    graph = helper.make_graph(
        nodes, "mentionwatch",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT32, [1, "tokens"])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, size]) for name, size in zip(OUTPUTS, sizes)],
        initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                             producer_name="mentionwatch", ir_version=IR_VERSION)


def _skip_norm(node, const, value: str, skip: str, prefix: str, t: dict[str, np.ndarray], name: str,
               eps: float) -> str:
    """LayerNorm(value + bias + skip)."""
    biased = node("Add", [value, const(f"{name}_bias", t[prefix + "dense.bias"])], f"{name}_biased")
    summed = node("Add", [biased, skip], f"{name}_sum")
    return node("LayerNormalization", [summed, const(f"{name}_gamma", t[prefix + "LayerNorm.weight"]),
                                       const(f"{name}_beta", t[prefix + "LayerNorm.bias"])], name, epsilon=eps)
