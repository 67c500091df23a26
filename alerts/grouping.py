"""When a group of waiting notifications becomes a Slack message (Alertmanager's group_wait,
group_interval and quiet hours), as pure functions of the group's state and `now`.

A group that never sent waits `group_wait` after its oldest notification, so a burst becomes one
message; a group's next top-level message waits `group_interval` after its last one, and what
arrives meanwhile goes, after `group_wait`, into that message's thread, so a new complaint is never
held for minutes yet the channel gets at most one message per group per `group_interval`. During
the route's quiet hours nothing is sent unless the route is urgent; when they end, what was held
goes out grouped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from monitor.config import WEEKDAYS, WeeklyHours

MAX_PER_MESSAGE = 10


@dataclass(frozen=True)
class GroupState:
    """A group with waiting notifications, as the store sees it."""

    group_key: str
    brand: str
    route: str
    channel: str
    oldest_waiting: datetime
    waiting: int
    urgent: bool
    last_sent_at: datetime | None
    last_alert_id: int | None = None  # the group's last top-level message, whose thread takes what follows it


def in_hours(hours: WeeklyHours, now: datetime) -> bool:
    """Whether `now` falls in these weekly hours; `end` before `start` runs past midnight into the next
    day (which then need not be listed); `start == end` means the whole day."""
    local = now.astimezone(ZoneInfo(hours.timezone))
    day, clock = WEEKDAYS[local.weekday()], local.time().replace(tzinfo=None)
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    if hours.start == hours.end:
        return day in hours.days
    if hours.start < hours.end:
        return day in hours.days and hours.start <= clock < hours.end
    return (day in hours.days and clock >= hours.start) or (yesterday in hours.days and clock < hours.end)


def flush_mode(group: GroupState, group_wait: timedelta, group_interval: timedelta,
               quiet_hours: WeeklyHours | None, now: datetime, force: bool = False) -> Literal["message", "thread"] | None:
    """How this group's waiting notifications go out now: a new top-level `message` (never sent, or
    `group_interval` since its last one), into the `thread` of its last message (sent more recently;
    the oldest waiting one has waited `group_wait`), or None: not yet. `force` skips the waits, never
    quiet hours, and still answers in the thread of a recent message."""
    if quiet_hours is not None and not group.urgent and in_hours(quiet_hours, now):
        return None
    gathered = force or now - group.oldest_waiting >= group_wait
    if group.last_sent_at is None:
        return "message" if gathered else None
    if now - group.last_sent_at >= group_interval:
        return "message"
    if group.last_alert_id is None:
        return "message" if force else None
    return "thread" if gathered else None


def due_at(group: GroupState, group_wait: timedelta, group_interval: timedelta) -> datetime:
    """The first moment `flush_mode` (quiet hours aside) stops answering None for this group, so the
    daemon can flush it then instead of at its next periodic run."""
    gathered = group.oldest_waiting + group_wait
    if group.last_sent_at is None:
        return gathered
    new_message = group.last_sent_at + group_interval
    return new_message if group.last_alert_id is None else min(gathered, new_message)


def chunks(items: list, size: int = MAX_PER_MESSAGE) -> list[list]:
    """The first chunk is the top-level message; the rest go into its thread."""
    return [items[i:i + size] for i in range(0, len(items), size)]
