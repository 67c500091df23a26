"""VADER lexicon classifier: no model weights, a few MB of RAM, thousands of texts per second.

It is the fallback for small machines and the baseline the transformer model is measured against.
Sentiment comes from VADER's compound score (the thresholds its authors recommend, +-0.05);
intent comes from a handful of surface rules, which is exactly why the transformer model exists.
"""

from __future__ import annotations

import re
from typing import Sequence

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from classifiers.base import INTENTS, SENTIMENTS, Labels

VERSION = "lexicon-vader-1"
THRESHOLD = 0.05
_QUESTION_START = re.compile(
    r"^\s*(how|why|what|when|where|which|who|can|could|does|do|is|are|will|would|should|anyone|any)\b",
    re.IGNORECASE,
)
_SUGGESTION = re.compile(
    r"\b(please add|would be (nice|great|awesome)|feature request|you should|wish (it|you|there)|"
    r"it would help|could you add|consider adding)\b",
    re.IGNORECASE,
)
_MAX_CHARS = 5000


def _spread(winner: str, winner_score: float, labels: Sequence[str]) -> dict[str, float]:
    rest = (1.0 - winner_score) / (len(labels) - 1)
    return {label: (winner_score if label == winner else rest) for label in labels}


def _intent(text: str, sentiment: str) -> str:
    if _SUGGESTION.search(text):
        return "suggestion"
    if "?" in text or _QUESTION_START.match(text):
        return "question"
    if sentiment == "negative":
        return "complaint"
    if sentiment == "positive":
        return "praise"
    return "other"


class LexiconClassifier:
    version = VERSION

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def classify(self, texts: Sequence[str]) -> list[Labels]:
        return [self._one(text or "") for text in texts]

    def _one(self, text: str) -> Labels:
        text = text[:_MAX_CHARS]
        compound = self._vader.polarity_scores(text)["compound"] if text.strip() else 0.0
        if compound >= THRESHOLD:
            sentiment = "positive"
        elif compound <= -THRESHOLD:
            sentiment = "negative"
        else:
            sentiment = "neutral"
        strength = abs(compound)
        sentiment_score = 1.0 - strength if sentiment == "neutral" else 0.5 + strength / 2
        intent = _intent(text, sentiment)
        needs_reply = intent in ("complaint", "question", "suggestion")
        return Labels(
            sentiment=sentiment,
            sentiment_scores=_spread(sentiment, sentiment_score, SENTIMENTS),
            intent=intent,
            intent_scores=_spread(intent, 0.6, INTENTS),
            needs_reply=needs_reply,
            needs_reply_score=0.6 if needs_reply else 0.4,
            model=VERSION,
            low_confidence=strength < 0.3,
        )
