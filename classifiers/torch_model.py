"""The PyTorch side of the MiniLM classifier: the model definition training uses, the shipped artifact's
loader, and the unquantised reference path (`PackedEncoder`).

Imported only when a process trains, builds the ONNX graph, or runs the torch path, so a daemon that runs
a cached ONNX Runtime graph never loads torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from classifiers.base import INTENTS, SENTIMENTS
from classifiers.tokens import CONFIG_FILE, MAX_LENGTH, MODEL_DIR, WEIGHTS_FILE, base_model_dir, token_ids

_WIDTH_STEP = 16
_TOKEN_STEP = 32


def load_base(base_dir: Path | None = None):
    """Tokenizer and encoder from local files only, so HF_HUB_OFFLINE=1 is always safe."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    base_dir = base_dir or base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    encoder = AutoModel.from_pretrained(base_dir, local_files_only=True, add_pooling_layer=False)
    return tokenizer, encoder


class MultiTaskModel(nn.Module):
    """Mean-pooled encoder output feeding three linear heads; mean pooling is what MiniLM was trained with."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1) -> None:
        super().__init__()
        hidden = encoder.config.hidden_size
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden, len(SENTIMENTS))
        self.intent_head = nn.Linear(hidden, len(INTENTS))
        self.reply_head = nn.Linear(hidden, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        if isinstance(self.encoder, PackedEncoder):
            pooled = self.encoder(input_ids, attention_mask)
        else:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.sentiment_head(pooled), self.intent_head(pooled), self.reply_head(pooled).squeeze(-1)


def encode(tokenizer, texts: Sequence[str], max_length: int = MAX_LENGTH) -> dict[str, torch.Tensor]:
    """A padded batch of `token_ids` rows (head-and-tail truncation) with its attention mask."""
    rows = [token_ids(tokenizer, text, max_length) for text in texts]
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


class PackedEncoder(nn.Module):
    """Inference-only run of the BERT encoder with the batch's tokens packed end to end: the Linear layers
    see every token of the batch at once, attention pads each text to a width set by its own length, and
    pooling is each text's mean. No text meets another's padding, so its labels are the same alone as in
    any batch, and little time goes on padding."""

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert
        self.heads = bert.config.num_attention_heads
        self.head_size = bert.config.hidden_size // self.heads

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled last hidden state per text, shape (texts, hidden); texts must be left-aligned."""
        lengths = attention_mask.sum(1).tolist()
        filler = torch.zeros(_token_bucket(sum(lengths)) - sum(lengths), dtype=torch.long)
        ids = torch.cat([*(row[:length] for row, length in zip(input_ids, lengths)), filler])
        positions = torch.cat([*(torch.arange(length) for length in lengths), filler])
        embeddings = self.bert.embeddings
        x = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(torch.zeros_like(ids))
        x = embeddings.LayerNorm(x + embeddings.position_embeddings(positions))
        spans = list(zip(_offsets(lengths), _offsets(lengths)[1:]))
        groups: dict[int, list[int]] = {}
        for i, length in enumerate(lengths):
            groups.setdefault(-(-length // _WIDTH_STEP) * _WIDTH_STEP, []).append(i)
        for layer in self.bert.encoder.layer:
            attention = layer.attention
            context = self._attend(attention.self.query(x), attention.self.key(x), attention.self.value(x),
                                   spans, groups)
            x = attention.output.LayerNorm(attention.output.dense(context) + x)
            x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(x)) + x)
        return torch.stack([x[start:end].mean(0) for start, end in spans])

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                spans: list[tuple[int, int]], groups: dict[int, list[int]]) -> torch.Tensor:
        """Attention for texts grouped by their length rounded up to _WIDTH_STEP: a text is padded to a width
        that depends on its own length only, so its batch-mates never change what it computes."""
        context = torch.zeros_like(query)
        for width, members in groups.items():
            shape = (len(members), width, query.shape[-1])
            q, k, v = query.new_zeros(shape), key.new_zeros(shape), value.new_zeros(shape)
            keep = torch.zeros(len(members), 1, 1, width, dtype=torch.bool)
            for row, i in enumerate(members):
                start, end = spans[i]
                q[row, : end - start], k[row, : end - start], v[row, : end - start] = (
                    query[start:end], key[start:end], value[start:end])
                keep[row, ..., : end - start] = True
            q, k, v = (t.view(len(members), width, self.heads, self.head_size).transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(shape)
            for row, i in enumerate(members):
                start, end = spans[i]
                context[start:end] = out[row, : end - start]
        return context


def _token_bucket(tokens: int) -> int:
    """A batch's token count rounded up (at most 1/8 more) to one of a few sizes, so the encoder's
    temporaries come in a few sizes: varied sizes fragmented the heap and grew a daemon by 300 MB."""
    step = max(_TOKEN_STEP, 1 << max(0, tokens.bit_length() - 4))
    return -(-tokens // step) * step


def _offsets(lengths: Sequence[int]) -> list[int]:
    offsets = [0]
    for length in lengths:
        offsets.append(offsets[-1] + length)
    return offsets


def trained_state(model: MultiTaskModel, trained_prefixes: Sequence[str]) -> dict[str, torch.Tensor]:
    """The fp16 tensors worth shipping: only parameters training changed, never the frozen embeddings."""
    return {
        name: tensor.detach().to(torch.float16).contiguous()
        for name, tensor in model.state_dict().items()
        if name.startswith(tuple(trained_prefixes))
    }


def load_model(model_dir: Path = MODEL_DIR, packed: bool = True):
    """Base MiniLM plus the shipped fine-tuned tensors, unquantised; returns (tokenizer, model, config).
    `packed` wraps the encoder in `PackedEncoder` (inference); without it the model is the plain
    transformers one (what the ONNX graph is exported from)."""
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    tokenizer, encoder = load_base()
    model = MultiTaskModel(encoder)
    state = {name: tensor.float() for name, tensor in load_file(str(model_dir / WEIGHTS_FILE)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"{model_dir / WEIGHTS_FILE} has tensors this model lacks: {unexpected[:5]}")
    untrained = [name for name in missing if not name.startswith("encoder.embeddings.")]
    if untrained:
        raise ValueError(f"{model_dir / WEIGHTS_FILE} lacks trained tensors: {untrained[:5]}")
    model.eval()
    if packed:
        model.encoder = PackedEncoder(model.encoder)
    return tokenizer, model, config


class _Layer(nn.Module):
    """One BERT layer's parameters under transformers' names, which is all `PackedEncoder` reads."""

    def __init__(self, hidden: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        for part in ("query", "key", "value"):
            setattr(self.attention.self, part, nn.Linear(hidden, hidden))
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(hidden, hidden)
        self.attention.output.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Sequential()
        self.intermediate.dense = nn.Linear(hidden, inner)
        self.intermediate.intermediate_act_fn = nn.GELU()
        self.output = nn.Module()
        self.output.dense = nn.Linear(inner, hidden)
        self.output.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class _BareBert(nn.Module):
    """BERT's parameters laid out as transformers lays them out, built from the config without importing
    transformers (2 s of a first load): the unquantised inference path runs it through `PackedEncoder`."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = SimpleNamespace(**config)
        hidden, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
        self.embeddings.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
        self.embeddings.token_type_embeddings = nn.Embedding(config["type_vocab_size"], hidden)
        self.embeddings.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_Layer(hidden, config["intermediate_size"], eps)
                                           for _ in range(config["num_hidden_layers"]))


def load_inference_model(model_dir: Path = MODEL_DIR) -> MultiTaskModel:
    """The shipped model for the unquantised inference path: what `load_model` returns, built without
    transformers, from the same tensors (`onnx_graph.model_tensors`)."""
    from classifiers.onnx_graph import model_tensors

    tensors, config = model_tensors(model_dir)
    model = MultiTaskModel(_BareBert(config))
    state = {name: torch.from_numpy(tensor) for name, tensor in tensors.items()}
    missing, _ = model.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{model_dir / WEIGHTS_FILE} and the base model lack tensors: {missing[:5]}")
    model.encoder = PackedEncoder(model.encoder)
    return model.eval()


class TorchRunner:
    """The unquantised PyTorch path: packed batches on `threads` torch threads."""

    name = "torch-fp32"
    description = "torch fp32"

    def __init__(self, model: MultiTaskModel, threads: int) -> None:
        self.model = model
        self._threads = threads

    @staticmethod
    def capability() -> str:
        return torch.backends.cpu.get_cpu_capability()

    @torch.inference_mode()
    def logits(self, rows: list[list[int]]) -> tuple[list[list[float]], list[list[float]], list[float]]:
        """(sentiment, intent, needs_reply) logits per row of token ids."""
        previous = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            width = max(len(row) for row in rows)
            input_ids = torch.zeros((len(rows), width), dtype=torch.long)
            attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                input_ids[i, : len(row)] = torch.tensor(row)
                attention_mask[i, : len(row)] = 1
            sentiment, intent, reply = self.model(input_ids, attention_mask)
        finally:
            torch.set_num_threads(previous)
        return sentiment.tolist(), intent.tolist(), reply.tolist()
