"""UnansweredTracker: the reply clock as a pipeline stage, run from the process job.

Each tick (1) starts a clock for every notified mention that needs a reply, (2) closes the clocks
whose mention got a team reply recorded by a connector and updates the carrying Slack message, and
(3) acts on what `alerts.reply_clock.due_event` says is due: a reminder in the alert's thread, one
escalation, repeat reminders. Each decision and its outbox rows are one transaction, with dedupe
keys (`reminder:<mention>:<n>`, `escalation:<mention>`), so a crash or restart never sends twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts import messages
from alerts.attention import attention_of
from alerts.reply_clock import (
    ClockPolicy,
    ClockRow,
    Due,
    OPEN_STATES,
    deadline,
    due_event,
    promise_for,
    reminder_time,
)
from alerts.routes import ResolvedRoute, resolve_routes, shortest_repeat_interval
from monitor.core.labels import Labels
from monitor.config import Settings
from monitor.core.messages import Change, handled
from monitor.core.records import NewAlert, StatusUpdate, StoredMention
from monitor.store import Store
from monitor.core.logs import get_logger

log = get_logger(__name__)
CLOCK_LOOKBACK = timedelta(days=7)  # a mention routed longer ago than this never starts a clock (silences are shorter)


def needs_reply(mention: StoredMention, labels: Labels) -> bool:
    """Whether the team owes this mention an answer: the attention rule's reply clock."""
    return attention_of(mention, labels).reply_clock


def new_clock(settings: Settings, brand_id: str, mention: StoredMention, intent: str | None,
              now: datetime) -> ClockRow | None:
    """The clock a mention gets: deadline from the brand's promise, reminder time unless already past."""
    brand = settings.brands.get(brand_id)
    if brand is None:
        return None
    started = mention.created_at or mention.fetched_at
    promise = promise_for(brand, intent)
    remind = reminder_time(started, promise, brand.remind_at, brand.business_hours)
    return ClockRow(mention_id=mention.id, brand=brand_id, state="open", started_at=started, intent=intent,
                    deadline=deadline(started, promise, brand.business_hours),
                    remind_at=remind if remind > now else None)


def status_update(store: Store, mention_id: int, key: str, change: Change) -> StatusUpdate | None:
    """An update showing `change` on the message that carried the mention (none if nothing did yet)."""
    message_id = store.message_of(mention_id)
    if message_id is None:
        return None
    return StatusUpdate(message_id, mention_id, f"status:{mention_id}:{key}", change)


@dataclass
class TickReport:
    started: int = 0
    answered: int = 0
    reminders: int = 0
    escalations: int = 0


class UnansweredTracker:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self._routes: dict[int, tuple[StoredMention, ResolvedRoute]] = {}

    def tick(self, now: datetime) -> TickReport:
        report = TickReport()
        self._start_clocks(now, report)
        self._close_answered(now, report)
        clocks = self.store.open_clocks(now, shortest_repeat_interval(self.settings.routes))
        self._routes = {c.mention_id: self._routes[c.mention_id] for c in clocks if c.mention_id in self._routes}
        for clock in clocks:
            if clock.brand not in self.settings.brands:
                continue  # a brand removed from the config: its clocks wait until it is back
            known = self._route(clock)
            if known is None:
                continue
            mention, route = known
            due = due_event(clock, ClockPolicy(route.repeat_interval, route.quiet_hours), now)
            if due is not None:
                self._act(clock, due, mention, route, now, report)
        return report

    # --- (a) start ------------------------------------------------------------------------------

    def _start_clocks(self, now: datetime, report: TickReport) -> None:
        clocks = [new_clock(self.settings, brand_id, mention, labels.intent, now)
                  for mention, labels, brand_id in self.store.clock_candidates(now - CLOCK_LOOKBACK)
                  if needs_reply(mention, labels)]
        report.started = self.store.create_clocks([c for c in clocks if c is not None])
        if report.started:
            log.info("reply clock started for %d mention(s)", report.started)

    # --- (b) answered on the platform -----------------------------------------------------------

    def _close_answered(self, now: datetime, report: TickReport) -> None:
        for clock, response in self.store.answered_clocks():
            after = max(response["responded_at"] - clock.started_at, timedelta(0))
            status = handled(clock.mention_id, response["responder"], response["via"], after)
            closed = self.store.transition_clock(
                clock.mention_id, states=OPEN_STATES, now=now,
                changes={"state": "handled", "closed_at": response["responded_at"],
                         "closed_by": response["responder"], "closed_via": response["via"]},
                status=status_update(self.store, clock.mention_id, "closed", status))
            if closed:
                report.answered += 1
                log.info("mention %s answered on %s after %s", clock.mention_id, response["via"],
                         messages.format_age(after), extra={"mention_id": clock.mention_id})

    # --- (c) reminders and the escalation -------------------------------------------------------

    def _route(self, clock: ClockRow) -> tuple[StoredMention, ResolvedRoute] | None:
        """The mention, and the first route it takes: that decides the repeat interval and whom to
        escalate to. Cached: mentions are never rewritten."""
        if clock.mention_id not in self._routes:
            found = self.store.mention_with_labels(clock.mention_id)
            if found is None or found[1] is None:
                return None
            mention, labels = found
            brand = self.settings.brands[clock.brand]
            self._routes[clock.mention_id] = (mention, resolve_routes(self.settings.routes, clock.brand, brand,
                                                                      mention, labels)[0])
        return self._routes[clock.mention_id]

    def _act(self, clock: ClockRow, due: Due, mention: StoredMention, route: ResolvedRoute, now: datetime,
             report: TickReport) -> None:
        expect = {"reminders_sent": clock.reminders_sent, "escalated_at": clock.escalated_at}
        if due.kind == "resume":
            self.store.transition_clock(clock.mention_id, states=("snoozed",), expect=expect, now=now,
                                        changes={"state": "open"})
            return
        brand = self.settings.brands[clock.brand]
        about = {"mention_id": mention.id, "brand_name": brand.names[0], "source": mention.source_id,
                 "url": mention.url, "title": mention.title, "text": mention.text, "author": mention.author}
        message = self.store.message_of(mention.id)
        thread, channel = (self.store.thread_root(message) if message is not None else None) or (None, None)
        if due.kind == "escalation":
            if thread is None:
                return  # its alert is not queued yet (still grouping): escalate after it, never before
            promise = promise_for(brand, clock.intent)
            separate = route.escalation_channel != channel
            payload = messages.escalation_message(**about, promise=promise, deadline=clock.deadline, now=now,
                                                  escalate_to=route.escalate_to,
                                                  alert_link=messages.ALERT_LINK if separate else None)
            # In the alert's thread; a route with its own escalation channel gets it there, linking to the
            # alert (the sender fills the link in once the alert is posted, and holds it until then).
            alert = NewAlert(f"escalation:{mention.id}", "escalation", mention.id, clock.brand,
                             route.escalation_channel if separate else channel,
                             {**payload, "link_of": thread} if separate else payload,
                             thread_of=None if separate else thread)
            changes = {"state": "open", "escalated_at": now}
        else:
            alert = NewAlert(f"reminder:{mention.id}:{due.n}", "reminder", mention.id, clock.brand,
                             channel or brand.slack_channel,
                             messages.reminder_message(**about, deadline=clock.deadline, now=now,
                                                       in_thread=thread is not None, after_snooze=due.after_snooze),
                             thread_of=thread)
            changes = {"state": "open", "reminders_sent": due.n, "last_reminder_at": now}
        if self.store.transition_clock(clock.mention_id, states=OPEN_STATES, expect=expect, now=now,
                                       changes=changes, outbox=[alert]):
            if due.kind == "escalation":
                report.escalations += 1
                log.info("mention %s escalated to %s: unanswered past its reply time", mention.id, alert.channel,
                         extra={"mention_id": mention.id})
            else:
                report.reminders += 1
                log.debug("mention %s: reminder %d", mention.id, due.n, extra={"mention_id": mention.id})
