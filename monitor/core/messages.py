"""The neutral message routing produces for a receiver: what to say (summary, items, actions), not how.

Slack renders it as Block Kit (`alerts.messages.render_group`); a webhook receiver as JSON
(`alerts.neutral.webhook_json`), at send time from the outbox row that stores `to_json()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

FORMAT_VERSION = 1


@dataclass(frozen=True)
class MessageEntry:
    """One mention as a receiver gets it. Texts are the stranger's own, raw: each receiver cleans, cuts
    and escapes them for wherever it shows them."""

    mention_id: int
    brand: str
    brand_name: str
    source: str
    reason: str
    url: str | None
    title: str | None
    text: str
    author: str | None
    reach: int | None
    sentiment: str
    sentiment_confidence: float
    intent: str
    intent_confidence: float
    needs_reply: bool
    low_confidence: bool
    reply_by: datetime | None = None  # where a reply is owed
    held_by: str | None = None
    also: tuple[tuple[str, str | None], ...] = ()  # cross-posts of the same text: (source id, url)
    urgent: str | None = None  # why it is urgent ("reach 15.4k"), on an urgent route only


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
        data = asdict(self)
        for item in data["items"]:
            item["reply_by"] = item["reply_by"].isoformat() if item["reply_by"] is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Message":
        items = tuple(MessageEntry(**{**item, "also": tuple(tuple(a) for a in item.get("also", ())),
                                      "reply_by": datetime.fromisoformat(item["reply_by"]) if item.get("reply_by")
                                      else None})
                      for item in data["items"])
        return cls(**{**data, "items": items, "actions": tuple(data.get("actions", ()))})
