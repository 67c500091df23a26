"""The one interface every classifier implements, so the pipeline never knows which model runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

SENTIMENTS = ("negative", "neutral", "positive")
INTENTS = ("complaint", "question", "praise", "suggestion", "other")


@dataclass(frozen=True)
class Labels:
    """What a classifier says about one text. Scores are probabilities that sum to 1 per head."""

    sentiment: str
    sentiment_scores: dict[str, float]
    intent: str
    intent_scores: dict[str, float]
    needs_reply: bool
    needs_reply_score: float
    model: str
    language: str | None = None
    low_confidence: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.sentiment_scores.get(self.sentiment, 0.0)


class Classifier(Protocol):
    """Labels texts in batches; must never raise for one odd text (empty, huge, emoji, any language)."""

    version: str

    def classify(self, texts: Sequence[str]) -> list[Labels]: ...


def describe(classifier: Classifier) -> str:
    """"minilm-mt-2: onnxruntime int8 on AVX2": the model and what runs it (`runtime`, where a classifier
    has one; the lexicon is plain Python)."""
    return f"{classifier.version}: {getattr(classifier, 'runtime', 'pure Python')}"
