"""Grouping as a table of decisions (group_wait, group_interval, quiet hours across midnight and time
zones, urgent), then through the pipeline and the real slack-sdk against the Slack emulator."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from alerts.grouping import GroupState, due_at, flush_mode, in_hours
from monitor.config import WeeklyHours
from tests.support.routing import NOW, add, header, labels, mention_ids, routed_pipeline

WAIT, INTERVAL = timedelta(seconds=30), timedelta(minutes=5)
NIGHT_BERLIN = WeeklyHours(timezone="Europe/Berlin", days=["mon", "tue", "wed", "thu", "fri"],
                           start=time(22, 0), end=time(7, 0))


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


@pytest.mark.parametrize(("hours", "now", "inside"), [
    # Berlin is UTC+1 in November. 22:00-07:00 Berlin on weekdays: the night after Friday ends Saturday 07:00.
    (NIGHT_BERLIN, utc(20, 20, 59), False),  # Fri 21:59 Berlin
    (NIGHT_BERLIN, utc(20, 21, 0), True),    # Fri 22:00 Berlin
    (NIGHT_BERLIN, utc(20, 23, 30), True),   # Sat 00:30 Berlin: Friday's night, past midnight
    (NIGHT_BERLIN, utc(21, 5, 59), True),    # Sat 06:59 Berlin
    (NIGHT_BERLIN, utc(21, 6, 0), False),    # Sat 07:00 Berlin
    (NIGHT_BERLIN, utc(21, 22, 0), False),   # Sat 23:00 Berlin: Saturday is not listed
    (NIGHT_BERLIN, utc(22, 23, 30), False),  # Mon 00:30 Berlin: Sunday's night is not listed
    (NIGHT_BERLIN, utc(23, 21, 30), True),   # Mon 22:30 Berlin
    (WeeklyHours(timezone="America/New_York", start=time(9), end=time(17)), utc(20, 13, 59), False),  # 08:59 NY
    (WeeklyHours(timezone="America/New_York", start=time(9), end=time(17)), utc(20, 14, 0), True),
    (WeeklyHours(timezone="America/New_York", start=time(9), end=time(17)), utc(20, 22, 0), False),  # 17:00 NY
    (WeeklyHours(days=["sat", "sun"], start=time(0), end=time(0)), utc(21, 12), True),  # the whole day
    (WeeklyHours(days=["sat", "sun"], start=time(0), end=time(0)), utc(20, 12), False),
])
def test_quiet_hours_across_midnight_and_time_zones(hours, now, inside):
    assert in_hours(hours, now) is inside


def group(oldest: datetime, last_sent: datetime | None = None, urgent: bool = False) -> GroupState:
    return GroupState("root|brand=acme", "acme", "root", "#acme-alerts", oldest, 3, urgent, last_sent)


@pytest.mark.parametrize(("state", "now", "quiet", "force", "send"), [
    (group(NOW), NOW + timedelta(seconds=29), None, False, False),          # a burst is still gathering
    (group(NOW), NOW + WAIT, None, False, True),                             # group_wait is up
    (group(NOW, last_sent=NOW), NOW + timedelta(minutes=4), None, False, False),  # within group_interval
    (group(NOW, last_sent=NOW), NOW + INTERVAL, None, False, True),
    (group(NOW), NOW, None, True, True),                                     # run --once: no waiting
    (group(utc(20, 21, 0)), utc(20, 23, 0), NIGHT_BERLIN, False, False),     # quiet hours hold it
    (group(utc(20, 21, 0)), utc(20, 23, 0), NIGHT_BERLIN, True, False),      # even for run --once
    (group(utc(20, 21, 0), urgent=True), utc(20, 23, 0), NIGHT_BERLIN, False, True),  # urgent bypasses
    (group(utc(20, 21, 0)), utc(21, 6, 0), NIGHT_BERLIN, False, True),       # quiet hours over: out it goes
])
def test_flush_decision(state, now, quiet, force, send):
    # A group with no message to thread into (never sent, or its message unknown) sends or waits, as before.
    assert (flush_mode(state, WAIT, INTERVAL, quiet, now, force) is not None) is send


def sent(oldest: datetime, last_sent: datetime, urgent: bool = False) -> GroupState:
    return GroupState("root|brand=acme", "acme", "root", "#acme-alerts", oldest, 1, urgent, last_sent, 7)


@pytest.mark.parametrize(("state", "now", "quiet", "force", "mode"), [
    (group(NOW), NOW + timedelta(seconds=29), None, False, None),                # a burst is still gathering
    (group(NOW), NOW + WAIT, None, False, "message"),                            # the first message
    (sent(NOW + timedelta(minutes=1), NOW), NOW + timedelta(minutes=1, seconds=29), None, False, None),
    (sent(NOW + timedelta(minutes=1), NOW), NOW + timedelta(minutes=1) + WAIT, None, False, "thread"),
    (sent(NOW + timedelta(minutes=4), NOW), NOW + INTERVAL, None, False, "message"),  # interval over: top level
    (sent(NOW + timedelta(minutes=1), NOW), NOW + timedelta(minutes=1), None, True, "thread"),  # run --once
    (sent(utc(20, 21, 30), utc(20, 21, 29)), utc(20, 21, 31), NIGHT_BERLIN, False, None),     # quiet hours
    (sent(utc(20, 21, 30), utc(20, 21, 29), urgent=True), utc(20, 21, 31), NIGHT_BERLIN, False, "thread"),
    (GroupState("k", "acme", "root", "#a", NOW, 1, False, NOW, None), NOW + WAIT, None, False, None),  # no message
])
def test_flush_mode_keeps_top_level_messages_to_one_per_group_interval(state, now, quiet, force, mode):
    assert flush_mode(state, WAIT, INTERVAL, quiet, now, force) == mode


@pytest.mark.parametrize(("state", "due"), [
    (group(NOW), NOW + WAIT),                                                     # the first message
    (sent(NOW + timedelta(minutes=1), NOW), NOW + timedelta(minutes=1) + WAIT),   # into the thread
    (sent(NOW + timedelta(minutes=4, seconds=50), NOW), NOW + INTERVAL),           # interval over first
    (GroupState("k", "acme", "root", "#a", NOW, 1, False, NOW, None), NOW + INTERVAL),  # no message to thread into
])
def test_a_group_is_due_at_the_first_moment_flush_mode_lets_it_out(state, due):
    assert due_at(state, WAIT, INTERVAL) == due
    assert flush_mode(state, WAIT, INTERVAL, None, due - timedelta(microseconds=1)) is None
    assert flush_mode(state, WAIT, INTERVAL, None, due) is not None


def test_a_burst_within_group_wait_is_one_message_and_later_ones_go_into_its_thread_within_group_interval(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "30s", "group_interval": "5m",
                                                               "group_by": ["brand", "intent"]})
    first = [add(store, f"a{i}", labels(), NOW) for i in range(3)]
    pipeline.process()
    clock[0] = NOW + timedelta(seconds=20)
    pipeline.process()
    assert slack.posted() == [], "still within group_wait"
    clock[0] = NOW + timedelta(seconds=30)
    pipeline.process()
    [message] = slack.posted("#acme-alerts")
    assert header(message) == "3 complaints about Acme Cloud"
    assert mention_ids(message) == first
    assert [b["block_id"] for b in message["blocks"] if b["type"] == "actions"] == [f"actions:{i}" for i in first]

    clock[0] = NOW + timedelta(minutes=1)
    later = add(store, "a9", labels(), clock[0])
    question = add(store, "q1", labels("neutral", "question"), clock[0])
    pipeline.process()
    assert len(slack.posted()) == 1, "later ones wait group_wait too"
    clock[0] = NOW + timedelta(minutes=1, seconds=30)
    pipeline.process()
    assert [header(m) for m in slack.posted()[1:]] == ["Complaint: Acme Cloud", "Question: Acme Cloud"], \
        "a new group waits only group_wait; a group that sent recently answers in its message's thread"
    clock[0] = NOW + timedelta(seconds=30, minutes=5)
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted()] == [first, [later], [question]]
    assert [m["thread_ts"] for m in slack.posted()] == [None, message["ts"], None], \
        "one top-level message per group per group_interval"
    assert store.message_of(later) == 2 and store.route_of(later) == "root"


def test_at_default_settings_a_new_complaint_reaches_slack_within_interval_plus_group_wait(database, tmp_path, slack):
    """process_interval 5 s, group_wait 30 s, group_interval 5 min: also when the group sent a minute ago."""
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {})

    def delivered_after(mention_id: int, start) -> timedelta:
        for step in range(0, 120, 5):
            clock[0] = start + timedelta(seconds=step)
            pipeline.process()
            if any(mention_id in mention_ids(m) for m in slack.posted()):
                return clock[0] - start
        raise AssertionError("never delivered")

    budget = timedelta(seconds=5 + 30 + 15)
    assert delivered_after(add(store, "d1", labels(), NOW), NOW) <= budget
    later = NOW + timedelta(minutes=1)
    assert delivered_after(add(store, "d2", labels("neutral", "question"), later), later) <= budget
    assert len([m for m in slack.posted() if not m["thread_ts"]]) == 1, "the second went into the first's thread"


def test_a_burst_of_50_is_one_message_with_the_rest_in_its_thread(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "30s"})
    ids = [add(store, f"b{i}", labels(), NOW) for i in range(50)]
    pipeline.process()
    clock[0] = NOW + timedelta(seconds=30)
    pipeline.process()
    messages = slack.posted()
    top = [m for m in messages if not m["thread_ts"]]
    assert len(top) == 1 and len(messages) == 5
    assert header(top[0]) == "50 complaints about Acme Cloud"
    assert all(m["thread_ts"] == top[0]["ts"] for m in messages[1:])
    assert [len(mention_ids(m)) for m in messages] == [10] * 5
    assert sorted(i for m in messages for i in mention_ids(m)) == ids
    assert all(len(m["blocks"]) <= 50 for m in messages)
    pipeline.process()
    assert len(slack.posted()) == 5, "nothing is sent twice"


def test_quiet_hours_hold_alerts_until_they_end_except_urgent_ones(database, tmp_path, slack):
    routes = {"quiet_hours": {"timezone": "Europe/Berlin", "days": ["fri"], "start": "22:00", "end": "07:00"},
              "group_wait": "30s",
              "routes": [{"match": {"reach_at_least": 1000}, "urgent": True, "channel": "#acme-urgent"}]}
    night = utc(20, 22, 0)  # Fri 23:00 Berlin
    pipeline, store, clock = routed_pipeline(tmp_path, slack, routes, now=night, reply_within="1d")
    held = [add(store, f"n{i}", labels(), night) for i in range(2)]
    loud = add(store, "big", labels(), night, reach=50_000)
    pipeline.process()
    clock[0] = night + timedelta(minutes=10)
    pipeline.process(flush_all=True)
    assert [mention_ids(m) for m in slack.posted()] == [[loud]], "urgent goes out in quiet hours; run --once too"
    assert slack.posted("#acme-urgent")
    clock[0] = utc(21, 6, 0)  # Sat 07:00 Berlin
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted("#acme-alerts")] == [held]


def test_run_once_sends_what_it_routed_without_waiting(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {})
    ids = [add(store, f"c{i}", labels(), NOW) for i in range(2)]
    pipeline.process()
    assert slack.posted() == [], "the daemon waits group_wait (30 s by default)"
    pipeline.process(flush_all=True)
    assert [mention_ids(m) for m in slack.posted()] == [ids]
