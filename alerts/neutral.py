"""Alert items as the neutral `Message` every receiver renders (pure); each receiver's rendering is in its module."""

from __future__ import annotations

from alerts.messages import ACTIONS, MessageItem, entry_of
from monitor.core.messages import Message


def alert_message(items: list[MessageItem], summary: str, brand_id: str, route: str, part: str | None) -> Message:
    """A group's alert message (or one part of a large group) with the actions a person can take."""
    return Message(kind="alert", brand=brand_id, route=route, summary=summary,
                   items=tuple(entry_of(i, brand_id) for i in items), actions=tuple(ACTIONS), part=part)
