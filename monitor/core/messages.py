"""The neutral message routing produces for a receiver: what to say (summary, items, actions), not how.

The outbox stores `to_json()`; each receiver renders it when it sends: Slack as Block Kit
(`alerts.slack_render`), a webhook as JSON (`alerts.receivers.webhook.webhook_json`). What happens to a message
after it is queued (a button pressed, an answer on the platform, a cross-post, a deleted post) is a
`Change`, stored as data in its own outbox row, which a receiver that can edit messages renders too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
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


# --- changes to a queued message, as data (the receiver words them when it renders) ------------------

Change = dict[str, Any]


def handled(mention_id: int, by: str, via: str, after: timedelta) -> Change:
    """Closed by a person (`via` slack, cli, reaction) or answered on the platform (`via` its type)."""
    return {"kind": "handled", "mention_id": mention_id, "by": by, "via": via, "after_s": after.total_seconds()}


def snoozed(mention_id: int, by: str, until: datetime, at: datetime) -> Change:
    return {"kind": "snoozed", "mention_id": mention_id, "by": by, "until": until.isoformat(), "at": at.isoformat()}


def not_relevant(mention_id: int, by: str) -> Change:
    return {"kind": "not_relevant", "mention_id": mention_id, "by": by}


def relabelled(mention_id: int, by: str, changes: list[tuple[str, str]]) -> Change:
    """A person's label correction: (old, new) pairs."""
    return {"kind": "label", "mention_id": mention_id, "by": by, "changes": [list(c) for c in changes]}


def also_posted(mention_id: int, source: str, url: str | None) -> Change:
    """A later cross-post of the item's text: one more link on it."""
    return {"kind": "also", "mention_id": mention_id, "source": source, "url": url}


def deleted(mention_id: int) -> Change:
    """The platform says the post was deleted: its text is no longer shown."""
    return {"kind": "deleted", "mention_id": mention_id}
