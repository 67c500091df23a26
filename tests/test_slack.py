"""The Slack outbox against the Slack emulator: exactly once, in order, escaped, under faults."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from alerts.messages import slack_escape
from alerts.slack import SlackSender, make_client
from monitor.core.labels import Labels
from emulators.server import Reply
from emulators.slack import DELIVER_THEN_DROP, rate_limited
from monitor.config import SlackConfig
from monitor.core.records import NewAlert
from monitor.store import Store
from tests.support.config import alert_payload

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
LABELS = Labels("negative", {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, "complaint",
                {"complaint": 0.8, "question": 0.05, "praise": 0.05, "suggestion": 0.05, "other": 0.05},
                True, 0.9, "test-model")
HOSTILE = "Acme is <!channel> down <@U024BE7LH> see <https://evil.example|acme.io/login> & <!subteam^S1>"


@pytest.fixture
def store(database):
    store = Store(database)
    yield store
    store.close()


def sender_for(slack, store, clock, timeout=2) -> SlackSender:
    cfg = SlackConfig(token="xoxb-test", base_url=slack.api_url, timeout=timeout)
    return SlackSender(make_client(cfg), store, lambda: clock[0])


def queue(store, n, channel="#acme-alerts", text=HOSTILE):
    alerts = [NewAlert(f"test:{i}", "mention", None, "acme", channel,
                       alert_payload(i, text, LABELS, url="https://blog.example.com/p?a=1&b=<2>|x",
                                     title=f"post {i}", author="<@U1> mallory", reach=10, reply_by=NOW))
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
    caplog.set_level(logging.INFO, logger="mentionwatch.alerts.slack")
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


# --- ops: thread replies, updates, uploads ---------------------------------------------------------

def add(store, key, channel="#acme-alerts", text="hello", **op) -> int:
    store.commit_routing([], [NewAlert(key, "mention", None, "acme", channel,
                                       {"text": text, "blocks": [{"type": "section",
                                                                  "text": {"type": "mrkdwn", "text": text}}]},
                                       **op)], NOW)
    return max(r.id for r in store.outbox(1000)) if store.outbox(1000) else 0


def alert_ids(messages) -> list[int]:
    return [m["metadata"]["event_payload"]["alert_id"] for m in messages if m.get("metadata")]


def test_thread_reply_goes_under_its_parent_and_is_left_out_of_history(slack, store):
    parent = add(store, "p")
    sender = sender_for(slack, store, [NOW])
    assert sender.deliver().sent == 1
    reply = add(store, "r", thread_of=parent)
    assert sender.deliver().sent == 1
    top, answer = slack.posted()
    assert answer["thread_ts"] == top["ts"] and answer["metadata"]["event_payload"]["alert_id"] == reply
    history = sender.client.conversations_history(channel=top["channel"], include_all_metadata=True)
    assert [m["ts"] for m in history["messages"]] == [top["ts"]]


def test_reply_in_the_same_batch_as_its_parent_threads_under_it(slack, store):
    parent = add(store, "p")
    add(store, "r", thread_of=parent)
    assert sender_for(slack, store, [NOW]).deliver().sent == 2
    top, answer = slack.posted()
    assert answer["thread_ts"] == top["ts"]


def test_reply_waits_for_an_unsent_parent_and_keeps_its_channel_in_order(slack, store):
    reply = add(store, "r", thread_of=3)  # queued before its parent, e.g. by a slower writer
    later = add(store, "later")
    parent = add(store, "p", channel="#other")
    report = sender_for(slack, store, [NOW]).deliver()
    assert report.sent == 1 and report.held == 2  # the parent went out; the reply and `later` wait their turn
    assert alert_ids(slack.posted()) == [parent]
    assert states(store) == {"sent": 1, "pending": 2}
    report = sender_for(slack, store, [NOW]).deliver()
    assert report.sent == 2
    assert alert_ids(slack.posted()) == [parent, reply, later]
    assert slack.posted()[1]["thread_ts"] == slack.posted()[0]["ts"]


def test_reply_to_a_parent_that_failed_for_good_is_posted_top_level(slack, store):
    parent = add(store, "p", channel="#missing-channel")
    reply = add(store, "r", thread_of=parent)
    report = sender_for(slack, store, [NOW]).deliver()
    assert report.failed == 1 and report.sent == 1
    (message,) = slack.posted()
    assert message["metadata"]["event_payload"]["alert_id"] == reply and message["thread_ts"] is None


def test_thread_reply_of_unknown_outcome_is_found_with_conversations_replies(slack, store):
    parent = add(store, "p")
    sender = sender_for(slack, store, [NOW])
    sender.deliver()
    add(store, "r", thread_of=parent)
    slack.fail("chat.postMessage", DELIVER_THEN_DROP)
    assert sender.deliver().stopped == "unavailable"
    report = sender.deliver()
    assert report.reconciled == 1 and report.sent == 0
    assert len(slack.posted()) == 2
    assert any(c[0] == "conversations.replies" for c in slack.calls)
    assert states(store) == {"sent": 2}


def test_update_of_unknown_outcome_is_read_back_and_not_redone_when_it_took_effect(slack, store):
    parent = add(store, "p", text="open")
    sender = sender_for(slack, store, [NOW])
    sender.deliver()
    add(store, "u", text="handled by @sam after 14 min", op="update", updates=parent)
    slack.fail("chat.update", DELIVER_THEN_DROP)
    assert sender.deliver().stopped == "unavailable"
    assert sender.deliver().reconciled == 1
    (message,) = slack.posted()
    assert message["text"] == "handled by @sam after 14 min"
    assert message["blocks"][0]["text"]["text"] == "handled by @sam after 14 min"  # decoded, not a JSON string
    assert len(slack.updates()) == 1 and states(store) == {"sent": 2}


def test_update_of_unknown_outcome_that_did_not_take_effect_is_redone(slack, store):
    parent = add(store, "p", text="open")
    sender = sender_for(slack, store, [NOW], timeout=1)
    sender.deliver()
    add(store, "u", text="snoozed until 13:00 by @kim", op="update", updates=parent)
    slack.fail("chat.update", Reply(stall=3))
    assert sender.deliver().stopped == "unavailable"
    assert sender.deliver().sent == 1
    assert slack.posted()[0]["text"] == "snoozed until 13:00 by @kim"
    assert states(store) == {"sent": 2}


def test_update_of_a_deleted_message_fails_that_update_only(slack, store):
    parent = add(store, "p")
    sender = sender_for(slack, store, [NOW])
    sender.deliver()
    slack.messages.clear()
    add(store, "u", op="update", updates=parent)
    add(store, "next")
    report = sender.deliver()
    assert report.failed == 1 and report.sent == 1
    assert states(store) == {"sent": 2, "failed": 1}


def test_upload_shares_a_file_once_even_when_the_answer_is_lost(slack, store):
    import base64
    slack.add_channel("#acme-digest")
    payload = {"text": "Weekly digest for Acme", "filename": "acme-2026-W47.png", "title": "Acme, week 47",
               "content_b64": base64.b64encode(b"\x89PNG chart").decode()}
    store.commit_routing([], [NewAlert("digest", "digest", None, "acme", "#acme-digest", payload, op="upload")], NOW)
    slack.fail("files.completeUploadExternal", DELIVER_THEN_DROP)
    sender = sender_for(slack, store, [NOW])
    assert sender.deliver().stopped == "unavailable"
    assert sender.deliver().reconciled == 1
    (shared,) = slack.uploaded("#acme-digest")
    assert shared["text"] == "Weekly digest for Acme"
    assert shared["files"][0]["name"] == "acme-2026-W47-a1.png" and shared["files"][0]["title"] == "Acme, week 47"
    assert slack.uploads[shared["files"][0]["id"]]["content"] == b"\x89PNG chart"
    assert states(store) == {"sent": 1}


@pytest.mark.parametrize("kind, message, words", [
    ("auth", "HTTP 401 (access denied)", "credentials rejected"),
    ("rate_limited", "HTTP 429, retry after 600 s", "rate limited"),
    ("rate_limited", "X read budget exhausted: 10,000 of 10,000 post reads used", "budget exhausted"),
    ("rate_limited", "X says the app's monthly post cap is used up (HTTP 429 usage-capped)", "budget exhausted"),
    ("unavailable", "connection failed (URLError)", "unreachable"),
    ("gone", "HTTP 404", "not found"),
    ("bad_payload", "response is not JSON", "unreadable answers"),
])
def test_source_health_messages_say_the_reason_in_words_at_break_and_recovery(kind, message, words):
    from alerts.messages import source_health_message
    broke = source_health_message("acme/<x>", "broke", kind, message)["text"]
    recovered = source_health_message("acme/<x>", "recovered", kind, message)["text"]
    assert f"is failing ({kind}): {words}." in broke and "acme/&lt;x&gt;" in broke
    assert f"recovered (it was {words})" in recovered


class _Crash(BaseException):
    """The process dying between the Slack calls and the commit that records them."""


def test_a_parent_and_its_reply_both_posted_before_a_crash_are_each_found_not_resent(slack, store):
    parent = add(store, "p")
    reply = add(store, "r", thread_of=parent)
    crashing = sender_for(slack, store, [NOW])
    record = store.settle
    store.settle = lambda *a, **k: (_ for _ in ()).throw(_Crash())
    with pytest.raises(_Crash):
        crashing.deliver()
    store.settle = record
    assert states(store) == {"sending": 2} and len(slack.posted()) == 2
    report = sender_for(slack, store, [NOW]).deliver()
    assert report.reconciled == 2 and alert_ids(slack.posted()) == [parent, reply]


def test_a_status_update_lost_after_its_claim_is_redone_even_though_the_text_is_unchanged(slack, store):
    from alerts.messages import actions_block, with_status

    payload = {"text": "Complaint: Acme", "blocks": [actions_block(7)]}
    add_payload = NewAlert("p", "mention", None, "acme", "#acme-alerts", payload)
    store.commit_routing([], [add_payload], NOW)
    assert sender_for(slack, store, [NOW]).deliver().sent == 1
    handled = with_status(payload, 7, "handled by @sam after 14 min", False)
    store.commit_routing([], [NewAlert("u", "status", None, "acme", "#acme-alerts", handled, op="update",
                                       updates=1)], NOW)
    (row,) = store.outbox(10)
    store.claim([row], NOW)  # killed right after the claim, before chat.update
    sender_for(slack, store, [NOW]).deliver()
    [shown] = slack.posted()
    assert shown["blocks"] == handled["blocks"], "the message shows the new status"
    assert sum(1 for method, *_ in slack.calls if method == "chat.update") == 1
