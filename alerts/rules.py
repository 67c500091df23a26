"""Which labelled mentions need a human and where they go, as pure functions of the mention, its labels,
config, what the store knows (silences, spikes, earlier messages of the thread) and now."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Collection

from alerts.attention import attention_of
from alerts.grouping import MAX_PER_MESSAGE, GroupState, chunks
from alerts.messages import PLATFORMS, KudosItem, MessageItem, group_header, source_health_message, urgent_reason
from alerts.neutral import alert_message
from alerts.slack_render import kudos_json
from alerts.reply_clock import promise_for
from alerts.routes import group_key, resolve_routes
from alerts.silences import Silence, silencing
from monitor.core.labels import Labels
from monitor.config import Brand, Settings
from monitor.config.receivers import SLACK
from monitor.core.records import KUDOS_ROUTE, NewAlert, NewNotification, StoredMention, WaitingItem



def needs_human(mention: StoredMention, labels: Labels) -> str | None:
    """Why this mention enters the route tree (the attention rule sends it to an alert), or None."""
    decision = attention_of(mention, labels)
    return decision.reason if decision.destination == "alert" else None


def reply_by(mention: StoredMention, labels: Labels, brand: Brand) -> datetime:
    """The promised reply time in plain hours; the reply clock's deadline replaces it once one exists."""
    return (mention.created_at or mention.fetched_at) + promise_for(brand, labels.intent)


def message_item(mention: StoredMention, labels: Labels, brand_id: str, settings: Settings,
                 deadline: datetime | None = None, held_by: str | None = None,
                 also: tuple[tuple[str, str | None], ...] = ()) -> MessageItem:
    """One alert item; a reply-by time only where a reply is owed (negative news gets eyes, not a clock)."""
    brand = settings.brands.get(brand_id)
    owed = attention_of(mention, labels).reply_clock
    return MessageItem(mention_id=mention.id, reason=needs_human(mention, labels) or "Mention",
                       brand_name=brand.names[0] if brand else brand_id, source=mention.source_id, url=mention.url,
                       title=mention.title, text=mention.text, author=mention.author, reach=mention.reach,
                       labels=labels, reply_by=deadline or (reply_by(mention, labels, brand) if brand and owed else None),
                       held_by=held_by, also=also)


def _single(mention: StoredMention, labels: Labels, brand_id: str, settings: Settings, route: str) -> dict:
    """One mention's neutral message (a reply in a thread), stored for the receiver to render."""
    item = message_item(mention, labels, brand_id, settings)
    return alert_message([item], group_header([item]), brand_id, route, None).to_json()


def route_mention(mention: StoredMention, labels: Labels, settings: Settings, silences: list[Silence],
                  spikes: dict[str, tuple[int, str]], carriers: dict[str, int],
                  now: datetime, threaded: Collection[str]) -> list[NewNotification]:
    """One notification per brand and route this mention takes: silenced if a silence matches, folded into
    an active spike's thread, a reply in the thread of an earlier message of its thread, or waiting. Only
    a route whose receiver is in `threaded` (its registry entry declares threads) folds or replies."""
    if needs_human(mention, labels) is None:
        return []
    out: list[NewNotification] = []
    for brand_id in mention.matched:
        brand = settings.brands.get(brand_id)
        if brand is None:
            continue
        fold = None
        spike = spikes.get(brand_id)
        if spike and brand.spikes.fold_negatives and (labels.sentiment == "negative" or labels.intent == "complaint"):
            fold = NewAlert(dedupe_key=f"fold:{spike[0]}:{mention.id}:{brand_id}", kind="mention",
                            mention_id=mention.id, brand=brand_id, channel=spike[1],
                            payload=_single(mention, labels, brand_id, settings, "spike"), thread_of=spike[0],
                            format="neutral")
        for route in resolve_routes(settings.routes, brand_id, brand, mention, labels):
            common = dict(mention_id=mention.id, brand=brand_id, route=route.path, channel=route.channel,
                          group_key=group_key(route, brand_id, mention, labels), urgent=route.urgent)
            silence = silencing(silences, brand_id, mention, labels, route.channel, now)
            if silence is not None:
                out.append(NewNotification(**common, state="silenced", silence_id=silence.id))
            elif fold is not None and route.receiver in threaded:
                out.append(NewNotification(**common, state="folded", alert=fold))
            elif route.path in carriers and route.receiver in threaded:
                reply = NewAlert(dedupe_key=f"thread:{mention.id}:{route.path}", kind="mention",
                                 mention_id=mention.id, brand=brand_id, channel=route.channel,
                                 payload=_single(mention, labels, brand_id, settings, route.path),
                                 thread_of=carriers[route.path], format="neutral")
                out.append(NewNotification(**common, state="queued", alert=reply))
            else:
                out.append(NewNotification(**common, state="waiting"))
    return out


def fill_thank_you(template: str, author: str | None, platform: str) -> str:
    """Only {author} and {platform}: config load has checked the template has no other placeholder."""
    return template.format(author=(author or "there").lstrip("@"), platform=platform)


def kudos_notifications(mention: StoredMention, labels: Labels, settings: Settings, silences: list[Silence],
                        now: datetime) -> list[NewNotification]:
    """Praise waits, grouped per brand with the root route's timers, for each praised brand's kudos channel.
    Praise that speaks to the brand is owed a reply: without a kudos channel it goes to the brand's channel."""
    decision = attention_of(mention, labels)
    if decision.destination != "kudos":
        return []
    out = []
    for brand_id in mention.matched:
        brand = settings.brands.get(brand_id)
        channel = brand and (brand.kudos_channel or (brand.slack_channel if decision.reply_clock else None))
        if not channel:
            continue
        silence = silencing(silences, brand_id, mention, labels, channel, now)
        out.append(NewNotification(mention_id=mention.id, brand=brand_id, route=KUDOS_ROUTE,
                                   channel=channel, group_key=f"{KUDOS_ROUTE}|brand={brand_id}",
                                   urgent=False, state="silenced" if silence else "waiting",
                                   silence_id=silence.id if silence else None))
    return out


def kudos_item(item: WaitingItem, settings: Settings) -> KudosItem:
    brand = settings.brands.get(item.brand)
    mention = item.mention
    platform = PLATFORMS.get(mention.source, mention.source)
    return KudosItem(mention_id=mention.id, brand_name=brand.names[0] if brand else item.brand,
                     source=mention.source_id, platform=platform, url=mention.url, title=mention.title,
                     text=mention.text, author=mention.author,
                     suggestion=fill_thank_you(brand.thank_you if brand else "", mention.author, platform),
                     reply_by=item.deadline)


def group_messages(group: GroupState, items: list[WaitingItem], settings: Settings,
                   receiver: str = SLACK) -> list[tuple[NewAlert, list[int]]]:
    """A flushed group as outbox rows of up to 10 mentions each (the first top-level, the rest for its
    thread), each with the notifications it carries. Keys are deterministic: a retry cannot double-post.
    Each part is a neutral `Message`, stored as such; its receiver renders it when it sends (Slack: Block
    Kit with the changes queued since; another receiver: one message per part, no threads)."""
    if not items:
        return []
    if group.route == KUDOS_ROUTE:
        parts = chunks(items)
        return [(NewAlert(dedupe_key=f"group:{part[0].notification_id}:{group.group_key}"[:300], kind="kudos",
                          mention_id=part[0].mention.id, brand=group.brand, channel=group.channel,
                          payload=kudos_json([kudos_item(i, settings) for i in part],
                                             _part_note(n, part, len(items), len(parts)), len(items)),
                          format="neutral"),
                 [i.notification_id for i in part]) for n, part in enumerate(parts)]
    built = [message_item(i.mention, i.labels, i.brand, settings, i.deadline,
                          f"silence #{i.silence_id}" + (f" (“{i.silence_reason}”)" if i.silence_reason else "")
                          if i.silence_id else None, i.also) for i in items]
    if group.urgent:
        built = [replace(b, urgent=urgent_reason(b)) for b in built]
    header = group_header(built)
    out = []
    parts = chunks(list(zip(items, built)))
    for n, part in enumerate(parts):
        note = _part_note(n, part, len(items), len(parts))
        first = part[0][0]
        message = alert_message([b for _, b in part], header, group.brand, group.route, note)
        alert = NewAlert(dedupe_key=f"group:{first.notification_id}:{group.group_key}"[:300], kind="mention",
                         mention_id=first.mention.id, brand=group.brand, channel=group.channel,
                         payload=message.to_json(), receiver=receiver, format="neutral")
        out.append((alert, [i.notification_id for i, _ in part]))
    return out


def _part_note(n: int, part: list, total: int, parts: int) -> str | None:
    return f"{n * MAX_PER_MESSAGE + 1}–{n * MAX_PER_MESSAGE + len(part)} of {total}" if parts > 1 else None


def source_health_alert(source_id: str, brand_id: str | None, transition: str, kind: str | None,
                        message: str | None, since: datetime, settings: Settings) -> NewAlert:
    """One message when a source breaks and one when it recovers, to the operations channel."""
    brand = settings.brands.get(brand_id) if brand_id else None
    channel = settings.slack.ops_channel or (brand.slack_channel if brand else None)
    payload = source_health_message(source_id, transition, kind, message)
    return NewAlert(dedupe_key=f"health:{source_id}:{since.isoformat()}:{transition}", kind="source_health",
                    mention_id=None, brand=brand_id, channel=channel, payload=payload)
