"""The VADER baseline: same Labels contract as the transformer, and the rules it documents."""

import math

import pytest

from classifiers.base import INTENTS, SENTIMENTS
from classifiers.lexicon import VERSION, LexiconClassifier


@pytest.fixture(scope="module")
def lexicon() -> LexiconClassifier:
    return LexiconClassifier()


def test_labels_are_valid_probability_distributions(lexicon):
    texts = ["I love this product", "This is the worst service ever", "The store opens at 9"]
    for labels in lexicon.classify(texts):
        assert labels.sentiment in SENTIMENTS and labels.intent in INTENTS
        assert set(labels.sentiment_scores) == set(SENTIMENTS)
        assert set(labels.intent_scores) == set(INTENTS)
        assert math.isclose(sum(labels.sentiment_scores.values()), 1.0, abs_tol=1e-6)
        assert math.isclose(sum(labels.intent_scores.values()), 1.0, abs_tol=1e-6)
        assert labels.sentiment == max(labels.sentiment_scores, key=labels.sentiment_scores.get)
        assert labels.model == VERSION


def test_polarity_follows_vader(lexicon):
    negative, positive, neutral = lexicon.classify(
        ["This is terrible, I hate it", "Absolutely wonderful, thank you!", "The parcel is in Leeds"]
    )
    assert (negative.sentiment, negative.intent, negative.needs_reply) == ("negative", "complaint", True)
    assert (positive.sentiment, positive.intent) == ("positive", "praise")
    assert (neutral.sentiment, neutral.intent, neutral.needs_reply) == ("neutral", "other", False)


def test_surface_rules_for_questions_and_suggestions(lexicon):
    question, suggestion = lexicon.classify(["Does the app work offline?", "Please add a dark mode to the app"])
    assert question.intent == "question"
    assert suggestion.intent == "suggestion"


@pytest.mark.parametrize("text", ["", "   \n\t", "😀" * 50, "word " * 5000, "&amp; <b>html</b> https://x.io"])
def test_odd_inputs_never_raise(lexicon, text):
    (labels,) = lexicon.classify([text])
    assert labels.sentiment in SENTIMENTS


def test_empty_text_is_neutral_and_low_confidence(lexicon):
    (labels,) = lexicon.classify([""])
    assert labels.sentiment == "neutral"
    assert labels.low_confidence
