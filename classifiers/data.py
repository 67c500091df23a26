"""Training examples for the multi-task classifier, mapped from the public sets and the project's own set.

Each public set labels only part of what mentionwatch needs, so an `Example` carries only the labels its
source really gives. Intent is a *set* of allowed intents: "not a complaint" is {question, praise,
suggestion, other}, and the loss rewards probability mass anywhere in that set, so a partial label
teaches what it knows and nothing more. The mapping rules live here, and MODEL_CARD.md repeats them.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from classifiers.base import INTENTS, SENTIMENTS, Labels

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
OWN_INTENT_DIR = Path(__file__).resolve().parent / "intent_data"

NOT_COMPLAINT = frozenset(INTENTS) - {"complaint"}
NEITHER_COMPLAINT_NOR_SUGGESTION = frozenset(INTENTS) - {"complaint", "suggestion"}
REPLY_INTENTS = frozenset({"complaint", "question", "suggestion", "praise"})

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Example:
    """One text with whatever labels its source gives; None means "this source does not say"."""

    text: str
    source: str
    sentiment: str | None = None
    intents: frozenset[str] | None = None
    needs_reply: bool | None = None


def normalise(text: str) -> str:
    """Puts any post in the form TweetEval's training tweets have: @user handles, no URLs, no HTML entities."""
    text = html.unescape(text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub("@user", text)
    return _SPACE.sub(" ", text).strip()


def read_jsonl(path: Path) -> Iterator[dict]:
    """Yields the JSON objects of a JSONL file, skipping blank lines."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def reply_from_intent(intent: str) -> bool:
    """The needs_reply rule where a source has no reply label: everything but "other" deserves an answer."""
    return intent in REPLY_INTENTS


def tweeteval(data_dir: Path, split: str) -> list[Example]:
    return [
        Example(row["text"], "tweeteval", sentiment=row["label"])
        for row in read_jsonl(data_dir / "tweeteval_sentiment" / f"{split}.jsonl")
    ]


def complaints(data_dir: Path, split: str) -> list[Example]:
    """complaint -> {complaint} and needs a reply; not_complaint -> any other intent, reply unknown."""
    examples = []
    for row in read_jsonl(data_dir / "complaints" / f"{split}.jsonl"):
        if row["label"] == "complaint":
            examples.append(Example(row["text"], "complaints", intents=frozenset({"complaint"}), needs_reply=True))
        else:
            examples.append(Example(row["text"], "complaints", intents=NOT_COMPLAINT))
    return examples


def app_review_intents(row: dict) -> frozenset[str] | None:
    """bug_report -> complaint, feature_request -> suggestion; 4-5 star "rating" reviews -> praise;
    other rating / user_experience reviews -> neither complaint nor suggestion, except 1-2 star ones,
    which are often bare complaints ("worst app ever") and are left without an intent label."""
    label, stars = row["label"], row.get("rating") or 3
    if label == "bug_report":
        return frozenset({"complaint"})
    if label == "feature_request":
        return frozenset({"suggestion"})
    if stars <= 2:
        return None
    if label == "rating" and stars >= 4:
        return frozenset({"praise"})
    return NEITHER_COMPLAINT_NOR_SUGGESTION


def app_review_sentiment(row: dict) -> str | None:
    """Only short "rating" reviews say little besides their stars: 4-5 -> positive, 1-2 -> negative."""
    if row["label"] != "rating" or row.get("rating") is None:
        return None
    if row["rating"] >= 4:
        return "positive"
    if row["rating"] <= 2:
        return "negative"
    return None


def app_reviews(data_dir: Path, split: str) -> list[Example]:
    examples = []
    for row in read_jsonl(data_dir / "app_reviews_maalej" / f"{split}.jsonl"):
        intents = app_review_intents(row)
        needs_reply = True if intents and intents <= {"complaint", "suggestion"} else None
        examples.append(
            Example(row["text"], "app_reviews", app_review_sentiment(row), intents, needs_reply)
        )
    return examples


def labelled_examples(rows: Iterable[dict], source: str) -> list[Example]:
    """Rows in the feedback / own-set format: `text` plus any of `sentiment`, `intent`, `needs_reply`.
    A row with an intent but no needs_reply gets the intent's default reply rule."""
    examples = []
    for row in rows:
        sentiment, intent, needs_reply = row.get("sentiment"), row.get("intent"), row.get("needs_reply")
        if sentiment is not None and sentiment not in SENTIMENTS:
            raise ValueError(f"unknown sentiment {sentiment!r} in {source}")
        if intent is not None and intent not in INTENTS:
            raise ValueError(f"unknown intent {intent!r} in {source}")
        if needs_reply is None and intent is not None:
            needs_reply = reply_from_intent(intent)
        examples.append(
            Example(
                str(row["text"]),
                source,
                sentiment=sentiment,
                intents=frozenset({intent}) if intent else None,
                needs_reply=None if needs_reply is None else bool(needs_reply),
            )
        )
    return examples


def own_intent(split: str, directory: Path = OWN_INTENT_DIR) -> list[Example]:
    return labelled_examples(read_jsonl(directory / f"{split}.jsonl"), "own_intent")


def feedback(path: Path) -> list[Example]:
    return labelled_examples(read_jsonl(path), "feedback")


@dataclass(frozen=True)
class Task:
    """How to read the gold label of a JSONL row and the matching prediction from `Labels`, for `eval`."""

    labels: tuple[str, ...]
    gold: Callable[[dict], str | None]
    predicted: Callable[[Labels], str]


def _field(row: dict, *names: str) -> str | None:
    for name in names:
        if row.get(name) is not None:
            return str(row[name])
    return None


def _complaint_gold(row: dict) -> str | None:
    label = _field(row, "intent", "label")
    return None if label is None else ("complaint" if label == "complaint" else "not_complaint")


def _app_review_gold(row: dict) -> str | None:
    label = _field(row, "label", "intent")
    return None if label is None else APP_REVIEW_CLASSES.get(label, "other")


def _reply_gold(row: dict) -> str | None:
    return None if row.get("needs_reply") is None else ("yes" if row["needs_reply"] else "no")


APP_REVIEW_CLASSES = {"bug_report": "complaint", "complaint": "complaint", "feature_request": "suggestion",
                      "suggestion": "suggestion"}

TASKS: dict[str, Task] = {
    "sentiment": Task(SENTIMENTS, lambda row: _field(row, "sentiment", "label"), lambda labels: labels.sentiment),
    "intent": Task(INTENTS, lambda row: _field(row, "intent", "label"), lambda labels: labels.intent),
    "complaint": Task(
        ("complaint", "not_complaint"),
        _complaint_gold,
        lambda labels: "complaint" if labels.intent == "complaint" else "not_complaint",
    ),
    "app_reviews": Task(
        ("complaint", "suggestion", "other"),
        _app_review_gold,
        lambda labels: APP_REVIEW_CLASSES.get(labels.intent, "other"),
    ),
    "needs_reply": Task(("yes", "no"), _reply_gold, lambda labels: "yes" if labels.needs_reply else "no"),
}

# The validation suite the model card reports: (name, file under the data dir or None for the own set, task).
SUITE: tuple[tuple[str, str | None, str], ...] = (
    ("tweeteval_sentiment", "tweeteval_sentiment/validation.jsonl", "sentiment"),
    ("complaints", "complaints/validation.jsonl", "complaint"),
    ("app_reviews_3class", "app_reviews_maalej/validation.jsonl", "app_reviews"),
    ("own_intent", None, "intent"),
    ("own_intent_sentiment", None, "sentiment"),
    ("own_intent_needs_reply", None, "needs_reply"),
    ("airline_sentiment", "airline_sentiment/validation.jsonl", "sentiment"),
)
