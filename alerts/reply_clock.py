"""The reply clock's decisions, as pure functions of a clock row, the policy and `now`.

A mention that needs an answer gets a deadline: the brand's promise (per intent if set), counted
only in business hours when the brand has them. A reminder goes into the alert's thread at
`remind_at` of the promise, ONE escalation at the deadline, then a reminder every
`repeat_interval` until someone answers. A snooze pauses all of it; when it ends the clock comes
back with one reminder (or the escalation, if the deadline passed meanwhile). Reminders due in the
route's quiet hours wait for their end. After downtime at most one event is due per clock:
overdue clocks escalate once, never a burst of missed reminders. A `backlog` clock (a mention a
first run or the first poll after a long outage found) runs and shows overdue but sends nothing:
its brand got one summary instead; a snooze makes it an ordinary clock again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from alerts.grouping import in_hours
from monitor.config import WEEKDAYS, Brand, WeeklyHours

OPEN_STATES = ("open", "snoozed", "backlog")  # backlog: found by a first run or after an outage; never pages
CLOSED_STATES = ("handled", "not_relevant")


def promise_for(brand: Brand, intent: str | None) -> timedelta:
    return brand.reply_within_by_intent.get(intent, brand.reply_within) if intent else brand.reply_within


def _windows(hours: WeeklyHours, first_day: date):
    """Business windows (UTC start, UTC end) in order, from the one that began on `first_day` on."""
    zone = ZoneInfo(hours.timezone)
    day = first_day
    while True:
        if WEEKDAYS[day.weekday()] in hours.days:
            end_day = day if hours.end > hours.start else day + timedelta(days=1)
            yield (datetime.combine(day, hours.start, zone).astimezone(timezone.utc),
                   datetime.combine(end_day, hours.end, zone).astimezone(timezone.utc))
        day += timedelta(days=1)


def business_add(start: datetime, duration: timedelta, hours: WeeklyHours | None) -> datetime:
    """`start` plus `duration`, counting only time inside `hours` (all of it when None).

    Windows are local wall-clock times, so a 9-17 day is 9-17 before and after a DST change; time
    is counted in real elapsed seconds within them.
    """
    if hours is None:
        return start + duration
    if not hours.days or hours.start == hours.end:
        raise ValueError("business hours need at least one day and an end other than the start")
    remaining = duration
    local_day = start.astimezone(ZoneInfo(hours.timezone)).date() - timedelta(days=1)  # overnight windows
    for window_start, window_end in _windows(hours, local_day):
        if window_end <= start:
            continue
        begin = max(window_start, start)
        if window_end - begin >= remaining:
            return begin + remaining
        remaining -= window_end - begin
    raise AssertionError("unreachable: the windows never end")


def deadline(start: datetime, promise: timedelta, business_hours: WeeklyHours | None) -> datetime:
    return business_add(start, promise, business_hours)


def reminder_time(start: datetime, promise: timedelta, remind_at: float,
                  business_hours: WeeklyHours | None) -> datetime:
    return business_add(start, promise * remind_at, business_hours)


@dataclass(frozen=True)
class ClockRow:
    """A reply_clock row, as the decisions need it. `remind_at` is None when the alert itself came
    after the reminder time (a reminder right after the alert would only repeat it)."""

    mention_id: int
    brand: str
    state: str
    started_at: datetime
    deadline: datetime
    remind_at: datetime | None = None
    snoozed_until: datetime | None = None
    reminders_sent: int = 0
    last_reminder_at: datetime | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    closed_via: str | None = None
    intent: str | None = None


@dataclass(frozen=True)
class ClockPolicy:
    """The route's settings that bear on the clock: how often to repeat, and when reminders keep quiet
    (the escalation is not held: it is the promise itself)."""

    repeat_interval: timedelta
    quiet_hours: WeeklyHours | None = None


@dataclass(frozen=True)
class Due:
    """What to do now: `reminder` number `n`, the `escalation`, or `resume` (a snooze ended, nothing to say)."""

    kind: str
    n: int = 0
    after_snooze: bool = False


def due_event(clock: ClockRow, policy: ClockPolicy, now: datetime) -> Due | None:
    """The one thing due for this clock at `now`, if any; a reminder due in quiet hours waits for their end."""
    due = _due(clock, policy, now)
    if due is not None and due.kind == "reminder" and policy.quiet_hours and in_hours(policy.quiet_hours, now):
        return None
    return due


def _due(clock: ClockRow, policy: ClockPolicy, now: datetime) -> Due | None:
    if clock.state in CLOSED_STATES or clock.state == "backlog":
        return None
    resumed = clock.state == "snoozed"
    if resumed and (clock.snoozed_until is None or now < clock.snoozed_until):
        return None
    if clock.escalated_at is None:
        if now >= clock.deadline:
            return Due("escalation", after_snooze=resumed)
        reminder_due = clock.remind_at is not None and now >= clock.remind_at
        if reminder_due and (clock.reminders_sent == 0 or resumed):
            return Due("reminder", clock.reminders_sent + 1, resumed)
        return Due("resume") if resumed else None
    if resumed:
        return Due("reminder", clock.reminders_sent + 1, True)
    last = max(t for t in (clock.escalated_at, clock.last_reminder_at) if t is not None)
    if now >= last + policy.repeat_interval:
        return Due("reminder", clock.reminders_sent + 1)
    return None
