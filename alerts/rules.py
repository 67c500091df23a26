"""Which labelled mentions need a human, as a pure function of the mention, its labels, config and now."""

from __future__ import annotations

from datetime import datetime

from alerts.messages import mention_message, source_health_message
from classifiers.base import Labels
from monitor.config import Settings
from monitor.store import NewAlert, StoredMention


def alert_reason(labels: Labels) -> str | None:
    """Intent first (a question is worth an answer even when polite), then sentiment."""
    if labels.intent == "complaint":
        return "Complaint"
    if labels.intent == "question" and labels.needs_reply:
        return "Question"
    if labels.sentiment == "negative":
        return "Negative mention"
    return None


def alerts_for(mention: StoredMention, labels: Labels, settings: Settings, now: datetime) -> list[NewAlert]:
    # A connector may know better than the text, e.g. a 1-star review worded mildly.
    reason = alert_reason(labels) or mention.extra.get("needs_reply_hint")
    if reason is None or mention.extra.get("by_team"):
        return []
    out = []
    for brand_id in mention.matched:
        brand = settings.brands.get(brand_id)
        if brand is None:
            continue
        reply_by = (mention.created_at or mention.fetched_at) + brand.reply_within
        payload = mention_message(reason=reason, brand_name=brand.names[0], source=mention.source_id,
                                  url=mention.url, title=mention.title, text=mention.text, author=mention.author,
                                  reach=mention.reach, labels=labels, reply_by=reply_by)
        out.append(NewAlert(dedupe_key=f"mention:{mention.id}:{brand_id}", kind="mention",
                            mention_id=mention.id, brand=brand_id, channel=brand.slack_channel, payload=payload))
    return out


def source_health_alert(source_id: str, brand_id: str | None, transition: str, kind: str | None,
                        message: str | None, since: datetime, settings: Settings) -> NewAlert:
    """One message when a source breaks and one when it recovers, to the operations channel."""
    brand = settings.brands.get(brand_id) if brand_id else None
    channel = settings.slack.ops_channel or (brand.slack_channel if brand else None)
    payload = source_health_message(source_id, transition, kind, message)
    return NewAlert(dedupe_key=f"health:{source_id}:{since.isoformat()}:{transition}", kind="source_health",
                    mention_id=None, brand=brand_id, channel=channel, payload=payload)
