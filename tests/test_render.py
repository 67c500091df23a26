"""Receivers render at send time: the outbox holds the neutral message and what changed since; Slack
turns both into Block Kit when it posts or updates. Deleted posts update their alert in place."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from alerts import slack_render
from alerts.receivers import receiver_types, receivers
from alerts.receivers.webhook import WebhookReceiver
from alerts.slack import SlackSender, make_client
from emulators.slack import rate_limited
from emulators.webhook import WebhookEmulator, error
from monitor import actions
from monitor.config import ConfigError, SlackConfig, load_settings
from monitor.core.messages import Message
from monitor.core.records import NewAlert
from monitor.store import Store, schema
from monitor.store.migrate import current_revision, head
from tests.support.config import config_dict, pipeline_with_clock, write_config
from tests.support.routing import add, labels, routed_pipeline
from tests.support.tracker import ALERTS, ESCALATIONS, NOW, H, alert_message, complaint_id, make_world
from tests.support.schemas import legacy_sqlite

COMPLAINT_TEXT = "Terrible, Acme Cloud deleted my backups"


@pytest.fixture
def world(tmp_path, feeds, slack):
    pipeline, store, slack, at = make_world(tmp_path, feeds, slack)
    yield pipeline, store, slack, at
    store.close()


def rows(store) -> list:
    with store.engine.connect() as conn:
        return conn.execute(schema.alerts.select().order_by(schema.alerts.c.id)).all()


def deleted_on_the_feed(store, mention_id: int) -> list[tuple[str, str]]:
    """What a connector reports when its platform says this mention's post was deleted."""
    with store.engine.connect() as conn:
        external = conn.execute(schema.mentions.select().where(schema.mentions.c.id == mention_id)).first().external_id
    return [("feed", external)]


def test_the_outbox_holds_the_neutral_message_and_each_change_and_slack_shows_them_rendered(world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    post = next(r for r in rows(store) if r.op == "post" and r.mention_id == mention_id)
    message = Message.from_json(post.payload)  # a neutral message, no Block Kit
    assert post.format == "neutral" and "blocks" not in post.payload
    assert [i.mention_id for i in message.items] == [mention_id] and COMPLAINT_TEXT in message.items[0].text
    assert actions.snooze(store, pipeline.settings, mention_id, "U0SAM123", "slack", NOW + H).ok
    assert actions.mark_handled(store, pipeline.settings, mention_id, "U0SAM123", "slack", NOW + 2 * H).ok
    updates = [r for r in rows(store) if r.op == "update"]
    assert [u.payload["change"]["kind"] for u in updates] == ["snoozed", "handled"]
    assert all(set(u.payload) == {"change"} for u in updates)  # what happened, not how Slack shows it
    at(NOW + 2 * H)
    shown = alert_message(slack)
    expected = slack_render.render(post.payload, [u.payload["change"] for u in updates])
    assert shown["blocks"] == expected["blocks"] and shown["text"] == expected["text"]
    assert "handled by <@U0SAM123> after 2 h" in str(shown["blocks"])
    assert f"actions:{mention_id}" not in str(shown["blocks"])  # closed: its buttons are gone


def test_an_update_that_reached_slack_before_a_crash_is_recorded_not_redone(world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    assert actions.not_relevant(store, pipeline.settings, mention_id, "U0SAM123", "slack", NOW + H).ok
    at(NOW + H)
    assert len(slack.updates()) == 1
    with store.engine.begin() as conn:  # as if killed after chat.update, before the row was settled
        conn.execute(schema.alerts.update().where(schema.alerts.c.op == "update").values(state="sending"))
    at(NOW + 2 * H)
    assert len(slack.updates()) == 1 and store.alert_counts().get("sending", 0) == 0


def test_a_deleted_post_already_alerted_is_shown_deleted_once_and_its_text_never_sent_again(world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    assert COMPLAINT_TEXT in str(alert_message(slack))
    for _ in range(2):  # the platform says so twice (a replay): one mark, one update
        store.commit_poll("acme/blog", [], None, Counter(), NOW + H, deleted=deleted_on_the_feed(store, mention_id))
    at(NOW + H)
    at(NOW + 2 * H)
    ((_, params),) = slack.updates()
    shown = alert_message(slack)
    now_shows = str([shown["text"], shown["blocks"]])
    assert "deleted by its author" in now_shows and "deleted by its author" in str(params)
    assert COMPLAINT_TEXT not in now_shows + str(params) and "Acme Cloud lost my data" not in now_shows
    assert store.mention_with_labels(mention_id)[0].extra["deleted_at"] == (NOW + H).isoformat()
    assert all(COMPLAINT_TEXT not in str(m) for m in slack.posted() if m is not shown)  # no repost elsewhere



def test_a_deleted_post_in_block_kit_an_older_version_stored_loses_its_title_text_and_excerpt(world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    shown = alert_message(slack)
    assert "Acme Cloud lost my data" in str(shown["blocks"])  # the post's title is its link's label
    post = next(r for r in rows(store) if r.op == "post" and r.mention_id == mention_id)
    with store.engine.begin() as conn:  # the row as version 4 stored it: Block Kit, rendered when routed
        conn.execute(schema.alerts.update().where(schema.alerts.c.id == post.id)
                     .values(format="slack", payload={"text": shown["text"], "blocks": shown["blocks"]}))
    store.commit_poll("acme/blog", [], None, Counter(), NOW + H, deleted=deleted_on_the_feed(store, mention_id))
    at(NOW + H)
    ((_, params),) = slack.updates()
    now_shows = str([alert_message(slack)["text"], alert_message(slack)["blocks"], params])
    assert "deleted by its author" in now_shows and "<https://blog.example.com/1|deleted post>" in now_shows
    assert "Acme Cloud lost my data" not in now_shows and COMPLAINT_TEXT not in now_shows


def test_a_deleted_post_is_no_longer_quoted_by_its_escalation_which_keeps_its_link_to_the_alert(world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    at(NOW + 3 * H)  # a reminder in the alert's thread
    at(NOW + 5 * H)  # past the 4 h promise: escalated in its own channel, quoting the post
    (escalation,) = slack.posted(ESCALATIONS)
    assert [m for m in slack.posted(ALERTS) if m.get("thread_ts")], "reminded in the alert's thread"
    alert_link = re.search(r"<https://slack\.com/archives/[^|]+\|the alert>", str(escalation["blocks"])).group(0)
    assert COMPLAINT_TEXT in str(escalation["blocks"])
    store.commit_poll("acme/blog", [], None, Counter(), NOW + 6 * H, deleted=deleted_on_the_feed(store, mention_id))
    at(NOW + 6 * H)
    edited = {ts: params for ts, params in slack.updates()}
    assert set(edited) == {alert_message(slack)["ts"], escalation["ts"]}  # reminders in the thread quoted nothing
    shows = str([edited[escalation["ts"]]["text"], edited[escalation["ts"]]["blocks"]])
    assert "deleted by its author" in shows and alert_link in shows and "{alert_link}" not in shows
    assert COMPLAINT_TEXT not in shows and "Acme Cloud lost my data" not in shows


def test_a_post_deleted_before_its_alert_is_never_alerted(tmp_path, feeds, slack):
    routes = {"group_wait": "10m"}
    pipeline, store, slack, at = make_world(tmp_path, feeds, slack, routes=routes)
    assert slack.posted(ALERTS) == []  # still waiting for its group
    (waiting,) = [r["id"] for r in store.export_rows(None) if "lost my data" in (r["title"] or "")]
    store.commit_poll("acme/blog", [], None, Counter(), NOW, deleted=deleted_on_the_feed(store, waiting))
    at(NOW + H)
    assert all(COMPLAINT_TEXT not in str(m) for m in slack.posted())
    assert store.open_clocks() == []


def test_a_version_4_outbox_migrates_and_its_pending_block_kit_goes_out_once(tmp_path, slack):
    path = tmp_path / "v4.db"
    legacy_sqlite(path, 4)
    blocks = '[{"type": "section", "block_id": "mention:1", "text": {"type": "mrkdwn", "text": "old alert"}}]'
    with sqlite3.connect(path) as conn:
        for key, state in (("old:1", "sent"), ("old:2", "pending"), ("old:3", "sending")):
            conn.execute("INSERT INTO alerts (dedupe_key, kind, channel, payload, state, attempts, created_at, op, "
                         "receiver, format) VALUES (?, 'mention', '#acme-alerts', ?, ?, 0, '2026-11-20 11:00:00', "
                         "'post', 'slack', 'slack')", (key, '{"text": "old ' + key + '", "blocks": ' + blocks + '}', state))
    store = Store(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        assert current_revision(conn) == head()
    assert [(r.format, r.folded) for r in store.outbox(10)] == [("slack", None)] * 2
    sender = SlackSender(make_client(SlackConfig(token="xoxb-test", base_url=slack.api_url, timeout=2)), store,
                         lambda: NOW)
    assert sender.deliver().sent == 2 and sender.deliver().sent == 0
    assert sorted(m["text"] for m in slack.posted()) == ["old old:2", "old old:3"]
    assert [m["blocks"][0]["text"]["text"] for m in slack.posted()] == ["old alert"] * 2  # as stored, unchanged


def test_a_slack_pause_for_a_long_429_survives_a_restart(tmp_path, slack):
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    store.commit_routing([], [NewAlert("a:1", "mention", None, "acme", ALERTS, {"text": "first"})], NOW)
    cfg = SlackConfig(token="xoxb-test", base_url=slack.api_url, timeout=2)
    slack.fail("chat.postMessage", rate_limited(600))
    assert SlackSender(make_client(cfg), store, lambda: NOW).deliver().stopped == "rate_limited"
    calls = len(slack.calls)
    restarted = SlackSender(make_client(cfg), store, lambda: NOW + timedelta(minutes=5))
    assert restarted.deliver().stopped == "paused" and len(slack.calls) == calls  # Slack asked for 10 minutes
    later = SlackSender(make_client(cfg), store, lambda: NOW + timedelta(minutes=11))
    assert later.deliver().sent == 1 and [m["text"] for m in slack.posted()] == ["first"]


def test_a_webhook_pause_survives_a_restart(tmp_path, slack, monkeypatch):
    secret = "hook-secret-7d1c0e55a9b2"
    monkeypatch.setenv("HOOK_SECRET", secret)
    with WebhookEmulator(secret) as hook:
        config = config_dict(tmp_path, slack.api_url, [])
        config["receivers"] = {"ops-hook": {"type": "webhook", "url": hook.hook_url, "secret": "${HOOK_SECRET}"}}
        config["routes"] = {"group_wait": "0s", "routes": [{"match": {"intent": ["complaint"]}, "receiver": "ops-hook"}]}
        pipeline, store, _ = pipeline_with_clock(tmp_path, config, NOW)
        add(store, "c1", labels(), NOW)
        hook.fail(error(503, "600"))
        pipeline.process()
        store.close()
        for minutes, posts in ((5, 1), (11, 2)):  # paused for the 10 minutes it asked, across the restart
            restarted, store, _ = pipeline_with_clock(tmp_path, config, NOW + timedelta(minutes=minutes))
            restarted.process()
            assert len(hook.requests) == posts
            store.close()


def test_a_receiver_block_is_checked_by_its_plugin_at_its_own_line(tmp_path):
    found_types = [(r.type, r.config) for r in receivers()]  # found, not listed: Slack is the first entry
    assert found_types == [("slack", SlackConfig), ("webhook", WebhookReceiver)]
    config = config_dict(tmp_path, "http://127.0.0.1:9/api/", [])
    config["receivers"] = {"ops": {"type": "webhook", "url": "ftp://hooks.example/x", "secret": "tiny-secret-1"},
                           "pager": {"type": "pagerduty", "key": "k"}, "eng": {"type": "slack", "token": "xoxb-2"}}
    path = write_config(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, receiver_types=receiver_types())
    lines = path.read_text().splitlines()
    found = {p.path: p for p in caught.value.problems}
    assert "ftp://hooks.example/x" in lines[found["receivers.ops.url"].line - 1]
    assert "http://" in found["receivers.ops.url"].expected
    assert "16 characters" in found["receivers.ops.secret"].expected
    assert "tiny-secret-1" not in str(found["receivers.ops.secret"])  # a secret is never echoed
    assert "unknown receiver type 'pagerduty'" in found["receivers.pager"].expected
    assert "webhook" in found["receivers.pager"].expected
    assert "top-level `slack:` section" in found["receivers.eng"].expected  # one Slack app, configured there


def test_a_kudos_message_is_stored_as_its_praise_and_a_press_on_it_is_rendered_when_sent(tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "0s"}, kudos_channel="#acme-kudos",
                                             now=NOW)
    fan = add(store, "p1", labels("positive", "praise", needs_reply=True), NOW, author="fan",
              text="Acme Cloud support is great, thanks team!")
    pipeline.process()
    (kudos,) = [r for r in rows(store) if r.kind == "kudos"]
    assert kudos.format == "neutral" and "blocks" not in kudos.payload
    assert [i["mention_id"] for i in kudos.payload["kudos"]["items"]] == [fan]
    assert actions.mark_handled(store, pipeline.settings, fan, "U0SAM123", "slack", NOW + H).ok
    clock[0] = NOW + H
    pipeline.process()
    assert len(slack.updates()) == 1
    (shown,) = slack.posted("#acme-kudos")
    assert "handled by <@U0SAM123> after 1 h" in str(shown["blocks"]) and "Suggested reply" in str(shown["blocks"])
    assert f"actions:{fan}" not in str(shown["blocks"])
