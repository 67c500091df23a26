"""Classifiers behind one interface (`classifiers.base.Classifier`); `load_classifier` picks one by config."""

from __future__ import annotations

from pathlib import Path

from classifiers.base import Classifier


def load_transformer(model_dir: Path | None = None) -> Classifier:
    """The transformer, with progress shown while it loads: a machine's first load builds its graph."""
    from classifiers.transformer import TransformerClassifier
    from monitor.core.progress import Progress

    with Progress("loading the classifier"):
        return TransformerClassifier(model_dir)


def load_classifier(kind: str) -> Classifier:
    if kind == "transformer":
        return load_transformer()
    from classifiers.lexicon import LexiconClassifier
    return LexiconClassifier()
