"""What a classifier says about a text: a record the alerting and storage layers read without
knowing which model produced it."""

from __future__ import annotations

from dataclasses import dataclass, field


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
