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
from typing import Callable, Iterator

from classifiers.base import INTENTS, SENTIMENTS, Labels

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
OWN_INTENT_DIR = Path(__file__).resolve().parent / "intent_data"

NOT_COMPLAINT = frozenset(INTENTS) - {"complaint"}
NEITHER_COMPLAINT_NOR_SUGGESTION = frozenset(INTENTS) - {"complaint", "suggestion"}
COMPLAINT_OR_QUESTION = frozenset({"complaint", "question"})
# labels.md: complaints and questions always need a reply, "other" almost never (phishing is the exception);
# praise and suggestions depend on whom they address, which an intent alone does not say.
REPLY_BY_INTENT: dict[str, bool | None] = {
    "complaint": True, "question": True, "other": False, "praise": None, "suggestion": None,
}
OWN_LABELS = ("intent", "sentiment", "needs_reply")

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
    for _, row in numbered_jsonl(path):
        yield row


def numbered_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object fails naming file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield number, row


def reply_from_intent(intent: str) -> bool | None:
    """The needs_reply labels.md implies where a source gives an intent but no reply label; None (unknown) for
    praise and suggestions, which need a reply only when addressed to the brand."""
    return REPLY_BY_INTENT[intent]


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
    """bug_report -> complaint, feature_request -> suggestion. For the other reviews the stars decide, as labels.md
    reads them: 1-2 stars voice dissatisfaction (a complaint, or a question the fault caused: "how do I connect,
    2 stars till I get an answer"), 4-5 star "rating" reviews are praise, 4-5 star user_experience reviews are
    anything but complaint or suggestion; 3 stars (often "good but ...", a complaint) stay unlabelled."""
    label, stars = row["label"], row.get("rating") or 3
    if label == "bug_report":
        return frozenset({"complaint"})
    if label == "feature_request":
        return frozenset({"suggestion"})
    if stars <= 2:
        return COMPLAINT_OR_QUESTION
    if stars == 3:
        return None
    if label == "rating":
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


def app_review_reply(intents: frozenset[str] | None) -> bool | None:
    """A review on the brand's own store page that reports a fault, asks or requests a feature needs an answer;
    praise there is usually third person ("great app"), which labels.md leaves unanswered, but some thank the
    developers, so praise and mixed sets stay unknown."""
    if intents and intents <= COMPLAINT_OR_QUESTION | {"suggestion"}:
        return True
    return None


def app_reviews(data_dir: Path, split: str) -> list[Example]:
    examples = []
    for row in read_jsonl(data_dir / "app_reviews_maalej" / f"{split}.jsonl"):
        intents = app_review_intents(row)
        reply = app_review_reply(intents)
        examples.append(Example(row["text"], "app_reviews", app_review_sentiment(row), intents, reply))
    return examples


def labelled_examples(path: Path, source: str, required: tuple[str, ...] = ()) -> list[Example]:
    """Rows in the feedback / own-set format: `text` plus any of `sentiment`, `intent`, `needs_reply` (those in
    `required` must be there). A row with an intent but no needs_reply gets what labels.md implies, if anything.
    A bad row stops with an error naming the file, line, key and value."""
    examples = []
    for line, row in numbered_jsonl(path):
        where = f"{path}:{line}"
        if not isinstance(row.get("text"), str):
            raise ValueError(f"{where}: key 'text' must be a string, got {row.get('text')!r}")
        for key in required:
            if row.get(key) is None:
                raise ValueError(f"{where}: key {key!r} is missing")
        sentiment, intent, needs_reply = row.get("sentiment"), row.get("intent"), row.get("needs_reply")
        if sentiment is not None and sentiment not in SENTIMENTS:
            raise ValueError(f"{where}: key 'sentiment' has unknown value {sentiment!r}")
        if intent is not None and intent not in INTENTS:
            raise ValueError(f"{where}: key 'intent' has unknown value {intent!r}")
        if needs_reply is not None and not isinstance(needs_reply, bool):
            raise ValueError(f"{where}: key 'needs_reply' must be true or false, got {needs_reply!r}")
        if needs_reply is None and intent is not None:
            needs_reply = reply_from_intent(intent)
        examples.append(Example(row["text"], source, sentiment, frozenset({intent}) if intent else None, needs_reply))
    return examples


def own_intent(split: str, directory: Path = OWN_INTENT_DIR) -> list[Example]:
    """The project's own set: every row carries all three labels."""
    return labelled_examples(directory / f"{split}.jsonl", "own_intent", OWN_LABELS)


def feedback(path: Path) -> list[Example]:
    return labelled_examples(path, "feedback")


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
