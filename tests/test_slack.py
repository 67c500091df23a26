"""The Slack outbox against the Slack emulator: exactly once, in order, escaped, under faults."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from alerts.messages import mention_message, slack_escape
from alerts.slack import SlackSender, make_client
from classifiers.base import Labels
from emulators.server import Reply
from emulators.slack import DELIVER_THEN_DROP, rate_limited
from monitor.config import SlackConfig
from monitor.store import NewAlert, Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
LABELS = Labels("negative", {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, "complaint",
                {"complaint": 0.8, "question": 0.05, "praise": 0.05, "suggestion": 0.05, "other": 0.05},
                True, 0.9, "test-model")
HOSTILE = "Acme is <!channel> down <@U024BE7LH> see <https://evil.example|acme.io/login> & <!subteam^S1>"


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    yield store
    store.close()


def sender_for(slack, store, clock, timeout=2) -> SlackSender:
    cfg = SlackConfig(token="xoxb-test", base_url=slack.api_url, timeout=timeout)
    return SlackSender(make_client(cfg), store, lambda: clock[0])


def queue(store, n, channel="#acme-alerts", text=HOSTILE):
    alerts = [NewAlert(f"test:{i}", "mention", None, "acme", channel,
                       mention_message(reason="Complaint", brand_name="Acme", source="acme/blog",
                                       url="https://blog.example.com/p?a=1&b=<2>|x", title=f"post {i}", text=text,
                                       author="<@U1> mallory", reach=10, labels=LABELS, reply_by=NOW))
              for i in range(n)]
    store.commit_routing([], alerts, NOW)


def states(store) -> dict:
    return store.alert_counts()


def test_messages_are_escaped_and_never_ping_or_unfurl(slack, store):
    queue(store, 1)
    report = sender_for(slack, store, [NOW]).deliver()
    assert report.sent == 1
    (message,) = slack.posted()
    params = message["params"]
    rendered = message["text"] + str(message["blocks"])
    for forbidden in ("<!channel>", "<@U024BE7LH>", "<!subteam", "<https://evil.example|", "<@U1>"):
        assert forbidden not in rendered
    assert slack_escape("<!channel>") in rendered
    assert "<https://blog.example.com/p?a=1&amp;b=%3C2%3E%7Cx|post 0>" in rendered
    assert params["unfurl_links"] is False and params["unfurl_media"] is False
    assert "link_names" not in params and "parse" not in params
    assert message["metadata"]["event_payload"]["alert_id"] == 1


def test_short_429_storm_is_retried_and_posts_once(slack, store):
    queue(store, 1)
    slack.fail("chat.postMessage", rate_limited(1), times=2)
    report = sender_for(slack, store, [NOW]).deliver()
    assert report.sent == 1
    assert len(slack.posted()) == 1
    assert states(store) == {"sent": 1}


def test_long_rate_limit_pauses_sending_then_delivers_in_order(slack, store):
    queue(store, 3)
    slack.fail("chat.postMessage", rate_limited(60))
    clock = [NOW]
    sender = sender_for(slack, store, clock)
    report = sender.deliver()
    assert report.stopped == "rate_limited" and report.sent == 0
    assert sender.deliver().stopped == "paused"  # no call while Slack asked us to wait
    calls = len(slack.calls)
    assert calls == len([c for c in slack.calls if c[0] == "chat.postMessage"])
    clock[0] += timedelta(seconds=61)
    assert sender.deliver().sent == 3
    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.posted()] == [1, 2, 3]


def test_connection_dropped_after_slack_got_the_post_is_reconciled_not_resent(slack, store):
    queue(store, 2)
    slack.fail("chat.postMessage", DELIVER_THEN_DROP)
    clock = [NOW]
    sender = sender_for(slack, store, clock)
    first = sender.deliver()
    assert first.stopped == "unavailable"
    assert states(store) == {"sending": 1, "pending": 1}
    assert len(slack.posted()) == 1
    second = sender.deliver()
    assert second.reconciled == 1 and second.sent == 1
    assert len(slack.posted()) == 2
    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.posted()] == [1, 2]
    assert states(store) == {"sent": 2}


def test_timeout_before_slack_got_the_post_is_resent_once(slack, store):
    queue(store, 1)
    slack.fail("chat.postMessage", Reply(stall=3))
    sender = sender_for(slack, store, [NOW], timeout=1)
    assert sender.deliver().stopped == "unavailable"
    assert states(store) == {"sending": 1}
    assert sender.deliver().sent == 1
    assert len(slack.posted()) == 1


def test_outage_keeps_alerts_queued_and_drains_in_order_on_recovery(slack, store, caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch.slack")
    queue(store, 4)
    slack.outage = True
    clock = [NOW]
    sender = sender_for(slack, store, clock)
    for _ in range(5):
        assert sender.deliver().stopped == "unavailable"
        clock[0] += timedelta(minutes=2)
    assert states(store) == {"pending": 4}
    slack.outage = False
    assert sender.deliver().sent == 4
    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.posted()] == [1, 2, 3, 4]
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "failing" in m]) == 1
    assert len([m for m in messages if "recovered" in m]) == 1


def test_a_message_error_fails_that_alert_only(slack, store):
    queue(store, 1, channel="#missing-channel")
    queue_more = NewAlert("test:ok", "mention", None, "acme", "#acme-alerts", {"text": "ok", "blocks": []})
    store.commit_routing([], [queue_more], NOW)
    report = sender_for(slack, store, [NOW]).deliver()
    assert report.failed == 1 and report.sent == 1
    assert states(store) == {"failed": 1, "sent": 1}


def test_rejected_token_keeps_alerts_pending(slack, store):
    queue(store, 2)
    cfg = SlackConfig(token="xoxb-invalid", base_url=slack.api_url)
    report = SlackSender(make_client(cfg), store, lambda: NOW).deliver()
    assert report.stopped == "auth"
    assert states(store) == {"pending": 2}
    assert store.get_health("slack").kind == "auth"
