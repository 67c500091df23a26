"""What a person can do to a mention: Handled, Snooze, Not relevant, Wrong label.

Slack buttons (Socket Mode) and the CLI call these same functions. Each is one store transaction:
the clock changes, the carrying message's update is queued, and the daemon's next process run
sends it. Acting on a closed mention is refused with who closed it and when, and queues nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts import messages
from alerts.reply_clock import CLOSED_STATES, OPEN_STATES, ClockRow
from monitor.core import messages as message_changes
from monitor.core.labels import INTENTS, SENTIMENTS
from monitor.config import Settings
from monitor.core.records import StatusUpdate, StoredMention
from monitor.store import Store
from monitor.tracker import new_clock, status_update
from monitor.core.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


def _who(by: str, via: str) -> str:
    if via in messages.PLATFORMS:
        return f"{by} on {messages.PLATFORMS[via]}"
    return by if by.startswith(("@", "<@")) else f"@{by}"


def _closed_message(clock: ClockRow, now: datetime) -> str:
    what = "marked not relevant" if clock.state == "not_relevant" else (
        "answered" if clock.closed_via in messages.PLATFORMS else "handled")
    if clock.closed_at is None or clock.closed_by is None:
        return f"mention {clock.mention_id} was already {what}"
    return (f"mention {clock.mention_id} was already {what} by {_who(clock.closed_by, clock.closed_via or '')} "
            f"{messages.format_age(now - clock.closed_at)} ago")


def _lookup(store: Store, settings: Settings, mention_id: int, now: datetime
            ) -> tuple[StoredMention | None, ClockRow | None, ClockRow | None, ActionResult | None]:
    """The mention, its clock, the clock to start if it has none, or why we cannot act."""
    found = store.mention_with_labels(mention_id)
    if found is None:
        return None, None, None, ActionResult(False, f"no mention with id {mention_id}")
    mention, labels = found
    clock = store.reply_clock(mention_id)
    if clock is not None and clock.state in CLOSED_STATES:
        return mention, clock, None, ActionResult(False, _closed_message(clock, now))
    create = None
    if clock is None:
        brand_id = next((b for b in [mention.brand, *mention.matched] if b in settings.brands), None)
        if brand_id is None:
            return mention, None, None, ActionResult(False, f"mention {mention_id}'s brand {mention.brand!r} is not "
                                                            "in the config")
        create = new_clock(settings, brand_id, mention, labels.intent if labels else None, now)
    return mention, clock, create, None


def _close(store: Store, settings: Settings, mention_id: int, by: str, via: str, now: datetime, state: str
           ) -> ActionResult:
    mention_id = store.item_of(mention_id)  # a cross-post is closed through the item it joined
    _, clock, create, refused = _lookup(store, settings, mention_id, now)
    if refused is not None:
        return refused
    started = (clock or create).started_at
    if state == "handled":
        status = message_changes.handled(mention_id, by, via, max(now - started, timedelta(0)))
    else:
        status = message_changes.not_relevant(mention_id, by)
    done = store.transition_clock(
        mention_id, states=OPEN_STATES, create=create, now=now,
        changes={"state": state, "closed_at": now, "closed_by": by, "closed_via": via},
        status=status_update(store, mention_id, "closed", status),
        response={"responder": by, "responded_at": now, "url": None, "via": via})
    if not done:  # someone else closed it between our read and our write
        return ActionResult(False, _closed_message(store.reply_clock(mention_id), now))
    log.info("mention %s %s by %s via %s", mention_id, state.replace("_", " "), by, via,
             extra={"mention_id": mention_id})
    what = "handled" if state == "handled" else "not relevant"
    return ActionResult(True, f"mention {mention_id} marked {what} by {_who(by, via)}")


def mark_handled(store: Store, settings: Settings, mention_id: int, by: str, via: str, now: datetime
                 ) -> ActionResult:
    """Someone answered: the clock stops and the message shows "handled by @sam after 14 min"."""
    return _close(store, settings, mention_id, by, via, now, "handled")


def not_relevant(store: Store, settings: Settings, mention_id: int, by: str, via: str, now: datetime
                 ) -> ActionResult:
    """Nothing to answer: the clock stops and the mention no longer counts as needing a reply."""
    return _close(store, settings, mention_id, by, via, now, "not_relevant")


# A second snooze of the same length this soon after the first is the same intent (a double click,
# a retried command): refused, so the clock is not pushed out twice.
SNOOZE_REPEAT_WINDOW = timedelta(seconds=30)


def snooze(store: Store, settings: Settings, mention_id: int, by: str, via: str, now: datetime,
           duration: timedelta = timedelta(hours=1)) -> ActionResult:
    """No reminders or escalation until `now + duration`; then the clock comes back (buttons stay)."""
    if duration <= timedelta(0):
        return ActionResult(False, "a snooze needs a positive duration, such as 30m or 1h")
    mention_id = store.item_of(mention_id)
    _, clock, create, refused = _lookup(store, settings, mention_id, now)
    if refused is not None:
        return refused
    if (clock is not None and clock.state == "snoozed" and clock.snoozed_until is not None
            and clock.snoozed_until > now and now - (clock.snoozed_until - duration) < SNOOZE_REPEAT_WINDOW):
        return ActionResult(False, f"mention {mention_id} was just snoozed until "
                                   f"{clock.snoozed_until:%Y-%m-%d %H:%M} UTC; not snoozed again")
    until = now + duration
    status = message_changes.snoozed(mention_id, by, until, now)
    done = store.transition_clock(
        mention_id, states=OPEN_STATES, create=create, now=now,
        changes={"state": "snoozed", "snoozed_until": until},
        status=status_update(store, mention_id, f"snoozed:{until.isoformat()}", status))
    if not done:
        return ActionResult(False, _closed_message(store.reply_clock(mention_id), now))
    log.info("mention %s snoozed until %s by %s via %s", mention_id, until.isoformat(), by, via,
             extra={"mention_id": mention_id})
    return ActionResult(True, f"mention {mention_id} snoozed until {until:%Y-%m-%d %H:%M} UTC by {_who(by, via)}")


def wrong_label(store: Store, settings: Settings, mention_id: int, by: str, via: str, now: datetime,
                sentiment: str | None = None, intent: str | None = None) -> ActionResult:
    """Store the right labels as a training example (`mentionwatch feedback export`) and show the
    correction on the message. The clock is left as it is: "Not relevant" stops it."""
    if sentiment is None and intent is None:
        return ActionResult(False, "give the right sentiment, intent or both")
    if sentiment is not None and sentiment not in SENTIMENTS:
        return ActionResult(False, f"unknown sentiment {sentiment!r}: expected one of {', '.join(SENTIMENTS)}")
    if intent is not None and intent not in INTENTS:
        return ActionResult(False, f"unknown intent {intent!r}: expected one of {', '.join(INTENTS)}")
    found = store.mention_with_labels(mention_id)
    if found is None:
        return ActionResult(False, f"no mention with id {mention_id}")
    mention, labels = found
    if labels is not None and all(getattr(labels, name) == value
                                  for name, value in (("sentiment", sentiment), ("intent", intent)) if value is not None):
        given = ", ".join(f"{name} {value}" for name, value in (("sentiment", sentiment), ("intent", intent)) if value)
        return ActionResult(False, f"mention {mention_id} is already labelled {given}: nothing to correct")
    changes = [(getattr(labels, name) if labels else "?", value)
               for name, value in (("sentiment", sentiment), ("intent", intent)) if value is not None]
    message_id = store.message_of(mention_id)
    status = None if message_id is None else StatusUpdate(
        message_id, mention_id, f"status:{mention_id}:label:{by}:{sentiment}:{intent}",
        message_changes.relabelled(mention_id, by, changes))
    text = "\n".join(part for part in (mention.title, mention.text) if part)
    if not store.record_label_feedback(mention_id, text, sentiment, intent, labels.model if labels else None, by,
                                       now, status):
        return ActionResult(False, f"{_who(by, via)} already corrected mention {mention_id} to this")
    log.info("mention %s label corrected by %s via %s: %s", mention_id, by, via,
             ", ".join(f"{old} -> {new}" for old, new in changes), extra={"mention_id": mention_id})
    return ActionResult(True, f"label of mention {mention_id} corrected by {_who(by, via)}: "
                              + ", ".join(f"{old} → {new}" for old, new in changes))
