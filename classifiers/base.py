"""The one interface every classifier implements, so the pipeline never knows which model runs.

`Labels` itself is a domain record (monitor/core/labels.py): alerts and storage read it too."""

from __future__ import annotations

from typing import Protocol, Sequence

from monitor.core.labels import INTENTS, SENTIMENTS, Labels

__all__ = ["INTENTS", "SENTIMENTS", "Labels", "Classifier"]


class Classifier(Protocol):
    """Labels texts in batches; must never raise for one odd text (empty, huge, emoji, any language)."""

    version: str

    def classify(self, texts: Sequence[str]) -> list[Labels]: ...


def describe(classifier: Classifier) -> str:
    """"minilm-mt-2: onnxruntime int8 on AVX2": the model and what runs it (`runtime`, where a classifier
    has one; the lexicon is plain Python)."""
    return f"{classifier.version}: {getattr(classifier, 'runtime', 'pure Python')}"
