"""The reply clock end to end: real pipeline, real slack-sdk against the Slack emulator, clock injected."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest

from emulators.reddit import RedditEmulator
from emulators.slack import channel_id_for
from monitor import actions
from tests.support.tracker import ALERTS, ESCALATIONS, NOW, H, alert_message, complaint_id, make_world
from tests.support.reddit import SECRET, TEAM, pipeline_for, posts_source

@pytest.fixture
def world(database, tmp_path, feeds, slack):
    pipeline, store, slack, at = make_world(tmp_path, feeds, slack)
    yield pipeline, store, slack, at
    store.close()


@pytest.fixture
def reddit():
    with RedditEmulator(client_id=f"cid-{secrets.token_hex(6)}", client_secret=SECRET) as emulator:
        yield emulator


def thread(slack, parent: dict) -> list[dict]:
    return [m for m in slack.posted(ALERTS) if m.get("thread_ts") == parent["ts"]]


def escalations(slack) -> list[dict]:
    return slack.posted(ESCALATIONS)


def test_reminder_then_one_escalation_then_a_reminder_every_repeat_interval(database, world, caplog):
    caplog.set_level(logging.DEBUG, logger="mentionwatch.monitor.tracker")
    _, store, slack, at = world
    parent = alert_message(slack)
    assert len(store.open_clocks()) == 1  # the praise needs no reply
    at(NOW + 2.9 * H)
    assert thread(slack, parent) == []
    at(NOW + 3 * H)  # 75 % of 4 h
    (reminder,) = thread(slack, parent)
    assert "Still unanswered" in reminder["text"] and "in 1 h" in str(reminder["blocks"])
    at(NOW + 3.5 * H)
    at(NOW + 3.5 * H)
    assert len(thread(slack, parent)) == 1 and escalations(slack) == []
    at(NOW + 4 * H)  # the deadline
    (escalation,) = escalations(slack)
    text = escalation["blocks"][0]["text"]["text"]
    assert "<!subteam^S0ESCAL8>" in text and "<@U0BOSS12>" in text  # our own pings
    assert "<@U999>" not in str(escalation["blocks"]) and "&lt;@U999&gt; kim" in text  # theirs, escaped
    for hours in (4.5, 5, 5.2, 6, 6):
        at(NOW + hours * H)
    assert len(escalations(slack)) == 1
    assert len(thread(slack, parent)) == 3  # 3 h, then 5 h and 6 h
    mention_id = complaint_id(store)
    assert [(r.levelname, r.getMessage()) for r in caplog.records if "escalated" in r.getMessage()] == [
        ("INFO", f"mention {mention_id} escalated to {ESCALATIONS}: unanswered past its reply time")]


def test_overdue_while_down_escalates_once_without_a_burst_of_reminders(database, world):
    _, _, slack, at = world
    parent = alert_message(slack)
    at(NOW + 30 * H)  # the daemon was down for a day
    assert len(escalations(slack)) == 1
    assert thread(slack, parent) == []
    at(NOW + 30.5 * H)
    at(NOW + 31 * H)
    assert len(escalations(slack)) == 1 and len(thread(slack, parent)) == 1


def test_snooze_pauses_the_clock_then_it_comes_back(database, world):
    pipeline, store, slack, at = world
    parent = alert_message(slack)
    mention_id = complaint_id(store)
    assert actions.snooze(store, pipeline.settings, mention_id, "sam", "cli", NOW + 2 * H, timedelta(hours=3)).ok
    at(NOW + 2 * H)
    (update,) = slack.updates()
    assert re.search(r"snoozed until <!date\^\d+\^\{time\}\|13:00 UTC> by @sam", str(update[1]["blocks"]))
    assert "actions:" in str(update[1]["blocks"])  # the buttons stay: a snooze can still be handled
    at(NOW + 3 * H)
    at(NOW + 4 * H)
    assert thread(slack, parent) == [] and escalations(slack) == []
    at(NOW + 5 * H)  # snooze over, deadline passed meanwhile: the escalation, once
    assert len(escalations(slack)) == 1
    at(NOW + 6 * H)
    assert len(thread(slack, parent)) == 1


def test_not_relevant_stops_the_clock_and_updates_the_message(database, world):
    pipeline, store, slack, at = world
    parent = alert_message(slack)
    mention_id = complaint_id(store)
    result = actions.not_relevant(store, pipeline.settings, mention_id, "U0SAM123", "slack", NOW + H)
    assert result.ok
    at(NOW + H)
    for hours in (3, 4, 8):
        at(NOW + hours * H)
    assert thread(slack, parent) == [] and escalations(slack) == []
    (update,) = slack.updates()
    blocks = str(update[1]["blocks"])
    assert "marked not relevant by <@U0SAM123>" in blocks and f"actions:{mention_id}" not in blocks


def test_team_reply_recorded_by_a_connector_closes_the_clock_with_one_update(database, world, caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch.monitor.tracker")
    pipeline, store, slack, at = world
    parent = alert_message(slack)
    mention_id = complaint_id(store)
    store.record_response(mention_id, "acme_help", NOW + 2 * H + timedelta(minutes=5), None, "reddit", NOW + 3 * H)
    at(NOW + 3 * H)
    at(NOW + 3 * H)
    (update,) = slack.updates()
    assert update[0] == parent["ts"] and update[1]["channel"] == channel_id_for(ALERTS)
    blocks = str(update[1]["blocks"])
    assert "answered on Reddit by u/acme_help after 2 h 5 min" in blocks
    assert f"actions:{mention_id}" not in blocks and f"mention:{mention_id}" in blocks
    for hours in (4, 6):
        at(NOW + hours * H)
    assert thread(slack, parent) == [] and escalations(slack) == []
    assert store.open_clocks() == []
    answered = [r.getMessage() for r in caplog.records if "answered" in r.getMessage()]
    assert answered == [f"mention {mention_id} answered on reddit after 2 h 5 min"]
    refused = actions.mark_handled(store, pipeline.settings, mention_id, "sam", "cli", NOW + 2.5 * H)
    assert not refused.ok
    assert refused.message == f"mention {mention_id} was already answered by acme_help on Reddit 25 min ago"


def test_reply_found_by_the_reddit_connector_closes_the_clock_and_edits_the_alert_once(database, tmp_path, reddit, slack):
    """The whole loop on the wire: praw reads the team's comment, the clock closes, chat.update once."""
    question = reddit.add_post("acme", "Acme Cloud billed me twice", "Two charges and no answer to my ticket. "
                               "Is anyone else seeing double billing from Acme Cloud?", "kim",
                               created_utc=NOW.timestamp())
    pipeline, _, clock = pipeline_for(tmp_path, reddit, slack, [posts_source("posts", "acme")])
    clock[0] = NOW
    pipeline.poll("acme/posts")
    pipeline.process()
    (parent,) = slack.posted("#acme-alerts")
    reddit.add_comment(question["name"], "Sorry! Refunds go out today.", TEAM.lower(),
                       created_utc=(NOW + 2 * H + timedelta(minutes=5)).timestamp())
    for hours in (3, 3.5, 6):
        clock[0] = NOW + hours * H
        pipeline.poll("acme/posts")
        pipeline.process()
    (update,) = slack.updates()
    assert update[0] == parent["ts"]
    assert f"answered on Reddit by u/{TEAM.lower()} after 2 h 5 min" in str(update[1]["blocks"])
    assert [m for m in slack.posted() if m is not parent] == []  # no reminder, no escalation


@pytest.mark.parametrize("brand, deadline", [
    # Fri 16:00 Berlin, Mon-Fri 9-17 Berlin, 4 h: 1 h on Friday, 3 h on Monday
    ({"business_hours": {"timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"],
                         "start": "09:00", "end": "17:00"}}, datetime(2026, 11, 23, 11, tzinfo=timezone.utc)),
    ({"reply_within_by_intent": {"complaint": "30m"}}, datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc)),
])
def test_the_brand_policy_sets_the_deadline(database, tmp_path, feeds, slack, brand, deadline):
    friday_4pm_berlin = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
    _, store, slack, at = make_world(tmp_path, feeds, slack, friday_4pm_berlin, **brand)
    (clock,) = store.open_clocks()
    assert clock.deadline == deadline
    at(deadline - timedelta(minutes=1))
    assert escalations(slack) == []
    at(deadline)
    assert len(escalations(slack)) == 1
    store.close()


def test_without_a_message_yet_the_reminder_is_top_level_and_says_what_it_is_about(database, tmp_path, feeds, slack):
    _, store, slack, at = make_world(tmp_path, feeds, slack, routes={"group_wait": "10h"})
    assert slack.posted() == []  # the group still waits
    at(NOW + 3 * H)
    (reminder,) = slack.posted(ALERTS)
    text = reminder["blocks"][0]["text"]["text"]
    assert reminder.get("thread_ts") is None and "Still unanswered" in text
    assert "<https://blog.example.com/1|Acme Cloud lost my data>" in text and "&lt;@U999&gt; kim" in text
    store.close()


def test_a_tick_reads_only_clocks_that_may_be_due_and_never_misses_one(database, tmp_path):
    """The store's pre-filter is a superset of `due_event` for every kind of clock, so a big backlog of
    escalated, unanswered mentions is not re-read on every tick."""
    from collections import Counter

    from alerts.reply_clock import ClockPolicy, ClockRow, due_event
    from monitor.core.records import Match, Post
    from monitor.store import Store

    store = Store(database)
    start = NOW - 10 * H
    moments = [None, NOW - 5 * H, NOW - 2 * H, NOW - 30 * timedelta(minutes=1), NOW + H]
    rows = []
    for state in ("open", "snoozed"):
        for deadline in (NOW - H, NOW + H):
            for remind_at in (None, NOW - 2 * H, NOW + 30 * timedelta(minutes=1)):
                for escalated in moments[:4]:
                    for last in moments[:4]:
                        for snoozed in (None, NOW - H, NOW + H) if state == "snoozed" else (None,):
                            rows.append(ClockRow(mention_id=len(rows) + 1, brand="acme", state=state,
                                                 started_at=start, deadline=deadline, remind_at=remind_at,
                                                 snoozed_until=snoozed, reminders_sent=1 if last else 0,
                                                 last_reminder_at=last, escalated_at=escalated))
    posts = [(Post("feed", str(r.mention_id), "text"), Match({"acme": []})) for r in rows]
    store.commit_poll("acme/blog", posts, None, Counter(), start)
    store.create_clocks(rows)
    policy = ClockPolicy(repeat_interval=H)
    due = {r.mention_id for r in rows if due_event(r, policy, NOW) is not None}
    read = {r.mention_id for r in store.open_clocks(NOW, H)}
    assert due <= read, f"clocks due but not read: {sorted(due - read)[:5]}"
    assert len(read) < len(rows) / 2 and due, "the pre-filter must leave out clocks with nothing due"
    store.close()
