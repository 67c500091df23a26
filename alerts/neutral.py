"""Alert items as the neutral `Message` a receiver other than Slack renders (pure)."""

from __future__ import annotations

from alerts.messages import ACTIONS, neutralise, truncate
from monitor.core.messages import Message, MessageEntry

TEXT_CHARS = 1000
TITLE_CHARS = 300


def entry(item, brand_id: str) -> MessageEntry:
    """A `MessageItem` as plain data: text cleaned (no controls, no bidi tricks) and cut, not escaped."""
    labels = item.labels
    return MessageEntry(
        mention_id=item.mention_id, brand=brand_id, source=item.source, reason=item.reason, url=item.url,
        title=truncate(neutralise(item.title), TITLE_CHARS) if item.title else None,
        text=truncate(neutralise(item.text or ""), TEXT_CHARS),
        author=truncate(neutralise(item.author), 200) if item.author else None, reach=item.reach,
        sentiment=labels.sentiment, intent=labels.intent, needs_reply=labels.needs_reply,
        low_confidence=labels.low_confidence,
        reply_by=item.reply_by.isoformat() if item.reply_by is not None else None,
        held_by=item.held_by, also=tuple(item.also))


def alert_message(items: list, summary: str, brand_id: str, route: str, part: str | None) -> Message:
    """A group's alert message (or one part of a large group) with the actions a person can take."""
    return Message(kind="alert", brand=brand_id, route=route, summary=neutralise(summary),
                   items=tuple(entry(i, brand_id) for i in items), actions=tuple(ACTIONS), part=part)
