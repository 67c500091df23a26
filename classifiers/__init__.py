"""Classifiers behind one interface (`classifiers.base.Classifier`); `load_classifier` picks one by config."""

from __future__ import annotations

from classifiers.base import Classifier


def load_classifier(kind: str) -> Classifier:
    if kind == "transformer":
        from classifiers.transformer import TransformerClassifier
        return TransformerClassifier()
    from classifiers.lexicon import LexiconClassifier
    return LexiconClassifier()
