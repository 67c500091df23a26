"""Receivers: a route names a webhook, which gets the neutral message signed, with a key that stays the
same across retries and crashes; Slack and webhook rows never wait on each other; old outboxes migrate."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from alerts.slack import SlackSender, make_client
from monitor import actions
from monitor.cli import app
from emulators.webhook import DELIVER_THEN_DROP, WebhookEmulator, error
from monitor.config import ConfigError, SlackConfig, load_settings
from monitor.core.records import NewAlert
from monitor.store import Store, schema
from monitor.store.migrate import current_revision, head, migrate
from tests.support.config import config_dict, feed_source, pipeline_with_clock, write_config
from tests.support.database import create_v1_database
from tests.support.routing import NOW, add, labels, mention_ids

SECRET = "hook-secret-7d1c0e55a9b2"
TO_HOOK = {"group_wait": "0s", "group_by": ["mention"],
           "routes": [{"match": {"intent": ["complaint"]}, "receiver": "ops-hook"}]}
BOTH = {"group_wait": "0s", "group_by": ["mention"],
        "routes": [{"match": {"intent": ["complaint"]}, "receiver": "ops-hook", "continue": True},
                   {"match": {"intent": ["complaint"]}}]}


@pytest.fixture
def hook():
    with WebhookEmulator(SECRET) as emulator:
        yield emulator


def hooked_pipeline(tmp_path, slack, hook, monkeypatch, routes=TO_HOOK):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config = config_dict(tmp_path, slack.api_url, [])
    config["receivers"] = {"ops-hook": {"type": "webhook", "url": hook.hook_url, "secret": "${HOOK_SECRET}",
                                        "timeout": "2s"}}
    config["routes"] = routes
    return pipeline_with_clock(tmp_path, config, NOW)


def outbox_rows(store) -> list:
    a = schema.alerts.c
    with store.engine.connect() as conn:
        return conn.execute(select(a.id, a.receiver, a.format, a.state, a.thread_of, a.op).order_by(a.id)).all()


def test_a_routed_alert_reaches_the_webhook_signed_with_a_stable_key(database, tmp_path, slack, hook, monkeypatch):
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    complaint = add(store, "c1", labels(), text="Acme Cloud lost my data <!channel>\u202e")
    question = add(store, "q1", labels("neutral", "question"))
    pipeline.process()
    (got,) = hook.requests
    assert got.signature_ok and got.status == 200
    (row,) = [r for r in outbox_rows(store) if r.receiver == "ops-hook"]
    assert (row.format, row.state) == ("neutral", "sent")
    assert got.key == got.body["id"] and got.key.startswith(f"mw-{row.id}-")
    message = got.body["message"]
    assert got.body["receiver"] == "ops-hook" and message["kind"] == "alert" and message["route"] == "root.0"
    assert [i["mention_id"] for i in message["items"]] == [complaint]
    item = message["items"][0]
    assert item["text"] == "Acme Cloud lost my data <!channel>"  # raw for JSON, invisible characters removed
    assert (item["sentiment"], item["intent"], item["needs_reply"]) == ("negative", "complaint", True)
    assert "handled" in message["actions"] and message["summary"].startswith("Complaint")
    assert SECRET not in str(got.body)
    # the question took the root route: Slack, as before
    assert [mention_ids(m) for m in slack.posted()] == [[question]]


def test_the_signature_is_hmac_sha256_of_the_exact_body(hook):
    body = b'{"id":"mw-1-x","message":{}}'
    header = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hook.verify(body, header)
    assert not hook.verify(body + b" ", header)
    assert not hook.verify(body, header.replace("sha256=", "sha256=0"))


def test_a_500_is_retried_after_a_backoff_with_the_same_key_and_body(database, tmp_path, slack, hook, monkeypatch):
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    add(store, "c1", labels())
    hook.fail(error(500))
    pipeline.process()
    assert [r.status for r in hook.requests] == [500]
    assert [r.state for r in outbox_rows(store)] == ["pending"]
    pipeline.process()  # within the backoff: nothing is sent
    assert len(hook.requests) == 1
    clock[0] = NOW + timedelta(seconds=10)
    pipeline.process()
    first, second = hook.requests
    assert second.status == 200 and second.key == first.key and second.body == first.body
    assert len(hook.delivered) == 1 and [r.state for r in outbox_rows(store)] == ["sent"]
    pipeline.process()
    assert len(hook.requests) == 2


def test_a_429_waits_as_long_as_retry_after_says(database, tmp_path, slack, hook, monkeypatch):
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    add(store, "c1", labels())
    hook.fail(error(429, "120"))
    pipeline.process()
    clock[0] = NOW + timedelta(seconds=100)
    pipeline.process()
    assert [r.status for r in hook.requests] == [429]
    clock[0] = NOW + timedelta(seconds=121)
    pipeline.process()
    assert [r.status for r in hook.requests] == [429, 200]
    assert hook.requests[0].key == hook.requests[1].key


def test_an_unknown_outcome_is_sent_again_with_the_same_key(database, tmp_path, slack, hook, monkeypatch):
    """The receiver got the POST but the answer was lost: the row stays `sending` and goes again with the
    same key, which the receiver recognises (at least once, exactly once for a receiver that keeps keys)."""
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    add(store, "c1", labels())
    hook.fail(DELIVER_THEN_DROP)
    pipeline.process()
    assert [r.state for r in outbox_rows(store)] == ["sending"]
    clock[0] = NOW + timedelta(seconds=10)
    pipeline.process()
    first, second = hook.requests
    assert (first.status, second.status) == (0, 200) and first.key == second.key
    assert list(hook.delivered) == [first.key]
    assert [r.state for r in outbox_rows(store)] == ["sent"]


def test_a_crash_after_the_claim_resends_with_the_same_key(database, tmp_path, slack, hook, monkeypatch):
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    add(store, "c1", labels())
    hook.fail(DELIVER_THEN_DROP)
    pipeline.process()  # the POST arrived; then the process is gone before it heard back
    store.close()
    restarted, store, later = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    later[0] = NOW + timedelta(minutes=1)  # after the backoff the dropped POST started (stored, so it outlives a restart)
    restarted.process()
    first, second = hook.requests
    assert first.key == second.key and second.signature_ok
    assert len(hook.delivered) == 1 and [r.state for r in outbox_rows(store)] == ["sent"]


def test_slack_and_webhook_routes_side_by_side_each_get_the_alert_once(database, tmp_path, slack, hook, monkeypatch):
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch, routes=BOTH)
    complaint = add(store, "c1", labels())
    slack.outage = True  # Slack down: the webhook still gets its message
    pipeline.process()
    assert len(hook.delivered) == 1 and slack.posted() == []
    slack.outage = False
    hook.fail(error(503), times=50)  # the webhook down: Slack still gets its message
    pipeline.process()
    clock[0] = NOW + timedelta(minutes=5)
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted()] == [[complaint]]
    assert [i["mention_id"] for body in hook.delivered.values() for i in body["message"]["items"]] == [complaint]
    receivers = sorted((r.receiver, r.format, r.state) for r in outbox_rows(store))
    assert receivers == [("ops-hook", "neutral", "sent"), ("slack", "neutral", "sent")]


def test_thread_replies_and_updates_are_never_sent_to_a_webhook_message(database, tmp_path, slack, hook, monkeypatch):
    """A later comment in an alerted thread is its own webhook message (no thread); a status change of a
    webhook row's mention queues no update; Slack gets none of it."""
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    post = add(store, "t3_post", labels(), thread_id="t3_post")
    pipeline.process()
    clock[0] = NOW + timedelta(minutes=20)
    reply = add(store, "t1_c1", labels(), clock[0], thread_id="t3_post", parent_id="t3_post")
    pipeline.process()
    items = [[i["mention_id"] for i in r.body["message"]["items"]] for r in hook.requests]
    assert items == [[post], [reply]]
    rows = outbox_rows(store)
    assert all(r.receiver == "ops-hook" and r.thread_of is None and r.op == "post" for r in rows)
    assert actions.mark_handled(store, pipeline.settings, post, "kim", "cli", clock[0]).ok
    pipeline.process()
    assert len(outbox_rows(store)) == len(rows) and slack.posted() == [] and len(hook.requests) == 2


def test_during_a_spike_a_negative_mention_folds_into_slacks_thread_but_is_its_own_webhook_message(
        database, tmp_path, slack, hook, monkeypatch):
    """Folding is a thread: the Slack route (its entry declares threads) folds, the webhook route does not."""
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch, routes=BOTH)
    store.commit_routing([], [NewAlert("spike:1", "spike", None, "acme", "#acme-alerts",
                                       {"text": "Spike: Acme Cloud", "blocks": None})], NOW)
    with store.engine.begin() as conn:
        conn.execute(schema.spikes.insert().values(brand="acme", metric="negative", state="active", started_at=NOW,
                                                   alert_id=1, details={}))
    complaint = add(store, "c1", labels())
    pipeline.process()
    spike, folded = slack.posted()
    assert folded["thread_ts"] == spike["ts"] and f"mention:{complaint}" in str(folded["blocks"])
    (got,) = hook.requests
    assert [i["mention_id"] for i in got.body["message"]["items"]] == [complaint]
    assert [(r.receiver, r.thread_of) for r in outbox_rows(store) if r.id != 1] == [("slack", 1), ("ops-hook", None)]


def test_reminders_and_escalations_of_a_webhook_alert_stay_out_of_slack(database, tmp_path, slack, hook, monkeypatch):
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    mention = add(store, "c1", labels())
    pipeline.process()
    rows = outbox_rows(store)
    for hours in (3, 5, 30):  # past the reminder, the deadline and a repeat
        clock[0] = NOW + timedelta(hours=hours)
        pipeline.process()
    with store.engine.connect() as conn:
        reminded = conn.execute(select(schema.reply_clock.c.reminders_sent, schema.reply_clock.c.escalated_at)
                                .where(schema.reply_clock.c.mention_id == mention)).one()
    assert reminded.escalated_at is not None  # the clock ran its course ...
    assert outbox_rows(store) == rows and slack.posted() == [] and len(hook.requests) == 1  # ... sending nothing


def test_rows_of_a_receiver_no_longer_configured_fail_and_say_why(database, tmp_path, slack, hook, monkeypatch):
    pipeline, store, clock = hooked_pipeline(tmp_path, slack, hook, monkeypatch)
    add(store, "c1", labels())
    hook.fail(error(503, "60"))
    pipeline.process()
    store.close()
    config = config_dict(tmp_path, slack.api_url, [])
    restarted, store, _ = pipeline_with_clock(tmp_path, config, NOW + timedelta(minutes=5))
    restarted.process()
    a = schema.alerts.c
    with store.engine.connect() as conn:
        (row,) = conn.execute(select(a.state, a.last_error)).all()
    assert row.state == "failed" and "ops-hook" in row.last_error and len(hook.requests) == 1


def test_validate_names_an_unknown_receiver_with_its_line(database, tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:9/api/", [])
    config["routes"] = {"routes": [{"match": {"intent": ["question"]}, "receiver": "pager"}]}
    path = write_config(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (problem,) = caught.value.problems
    lines = path.read_text().splitlines()
    assert problem.path == "routes.routes.0.receiver" and "'pager'" in problem.value
    assert "receiver: pager" in lines[problem.line - 1] and "slack" in problem.expected
    config["receivers"] = {"slack": {"type": "webhook", "url": "https://x.example/h", "secret": SECRET}}
    config["routes"] = {}
    with pytest.raises(ConfigError, match="receivers: .*`slack` is the built-in Slack receiver"):
        load_settings(write_config(tmp_path, config))


def test_route_test_names_the_receiver_a_route_takes_and_what_it_can_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config = config_dict(tmp_path, "http://127.0.0.1:9/api/", [feed_source("blog", "http://127.0.0.1:9/feed")])
    config["receivers"] = {"ops-hook": {"type": "webhook", "url": "https://hooks.example/mw", "secret": "${HOOK_SECRET}"}}
    config["routes"] = BOTH
    path = write_config(tmp_path, config)
    result = CliRunner().invoke(app, ["route-test", "-c", str(path), "--brand", "acme", "--source", "blog",
                                      "--intent", "complaint", "--sentiment", "negative"])
    assert result.exit_code == 0, result.output
    hook_route, slack_route = result.output.split("route root.1")
    assert "receiver: ops-hook  channel: #acme-alerts (inherited)" in hook_route
    assert "delivery: webhook, no threads or updates, at least once (idempotency key)" in hook_route
    assert "receiver: slack (inherited)" in slack_route
    assert "delivery: slack, threads and updates, exactly once (read back)" in slack_route


def test_a_version_3_outbox_migrates_and_its_pending_rows_go_to_slack_once(database, slack):
    create_v1_database(database)
    engine = create_engine(database)
    migrate(engine, "v3")  # the steps a version 3 install ran
    blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "old alert"}}]'
    with engine.begin() as conn:
        for key, state in (("old:1", "pending"), ("old:2", "sending")):
            conn.execute(text("INSERT INTO alerts (dedupe_key, kind, channel, payload, state, attempts, created_at, op) "
                              "VALUES (:key, 'mention', '#acme-alerts', :payload, :state, 0, :at, 'post')"),
                         {"key": key, "payload": '{"text": "old alert ' + key + '", "blocks": ' + blocks + '}',
                          "state": state, "at": NOW - timedelta(hours=1)})
    engine.dispose()
    store = Store(database)
    with store.engine.connect() as conn:
        assert current_revision(conn) == head()
    assert [(r.receiver, r.format) for r in outbox_rows(store)] == [("slack", "slack")] * 2
    cfg = SlackConfig(token="xoxb-test", base_url=slack.api_url, timeout=2)
    sender = SlackSender(make_client(cfg), store, lambda: NOW)
    assert sender.deliver().sent == 2
    assert sender.deliver().sent == 0
    assert sorted(m["text"] for m in slack.posted()) == ["old alert old:1", "old alert old:2"]
    store.commit_routing([], [NewAlert("new:1", "mention", None, "acme", "#acme-alerts", {"text": "new"})], NOW)
    assert sender.deliver().sent == 1 and len(slack.posted()) == 3
