"""The neutral message routing produces for a receiver: what to say (summary, items, actions), not how.

Slack renders it as Block Kit; a webhook receiver sends it as JSON (`to_json`). Plain data, so the
outbox stores it as is and a receiver renders it at send time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = 1


@dataclass(frozen=True)
class MessageEntry:
    """One mention as a receiver gets it. Text is the stranger's own (cleaned of control characters,
    cut to a few hundred characters), for the receiver to escape for wherever it shows it."""

    mention_id: int
    brand: str
    source: str
    reason: str
    url: str | None
    title: str | None
    text: str
    author: str | None
    reach: int | None
    sentiment: str
    intent: str
    needs_reply: bool
    low_confidence: bool
    reply_by: str | None = None  # ISO 8601 UTC, where a reply is owed
    held_by: str | None = None
    also: tuple[tuple[str, str | None], ...] = ()  # cross-posts of the same text: (source id, url)


@dataclass(frozen=True)
class Message:
    """A group of mentions one route sends: `summary` is the headline, `actions` what a person can do
    about each item (in Slack, its buttons; elsewhere, names to act on with the CLI)."""

    kind: str
    brand: str
    route: str
    summary: str
    items: tuple[MessageEntry, ...]
    actions: tuple[str, ...] = ()
    part: str | None = None  # "11–20 of 34" when a group is split over several messages
    version: int = field(default=FORMAT_VERSION)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Message":
        items = tuple(MessageEntry(**{**item, "also": tuple(tuple(a) for a in item.get("also", ()))})
                      for item in data["items"])
        return cls(**{**data, "items": items, "actions": tuple(data.get("actions", ()))})
