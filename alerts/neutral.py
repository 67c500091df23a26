"""Alert items as the neutral `Message` every receiver renders, and the webhook's rendering of it (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alerts.messages import ACTIONS, MessageItem, entry_of, neutralise, truncate
from monitor.core.messages import Message, MessageEntry

TEXT_CHARS = 1000
TITLE_CHARS = 300
AUTHOR_CHARS = 200


def alert_message(items: list[MessageItem], summary: str, brand_id: str, route: str, part: str | None) -> Message:
    """A group's alert message (or one part of a large group) with the actions a person can take."""
    return Message(kind="alert", brand=brand_id, route=route, summary=summary,
                   items=tuple(entry_of(i, brand_id) for i in items), actions=tuple(ACTIONS), part=part)


def _clean(text: str | None, limit: int) -> str | None:
    return truncate(neutralise(text), limit) if text is not None else None


def _shown(item: MessageEntry) -> MessageEntry:
    """A stranger's texts as a webhook gets them: control and invisible characters removed, one line,
    cut; not escaped (the receiver escapes for wherever it shows them)."""
    return replace(item, text=_clean(item.text, TEXT_CHARS) or "", title=_clean(item.title, TITLE_CHARS),
                   author=_clean(item.author, AUTHOR_CHARS), held_by=_clean(item.held_by, TITLE_CHARS))


def webhook_json(message: Message) -> dict[str, Any]:
    """The webhook receiver's rendering: the message as JSON, strangers' texts cleaned and cut."""
    return replace(message, summary=neutralise(message.summary),
                   items=tuple(_shown(i) for i in message.items)).to_json()
