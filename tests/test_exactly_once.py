"""Every alert, thread reply and message update reaches Slack exactly once, whatever goes wrong.

The outbox rows are queued through the Store directly, so each op is exercised on its own; the
faults are real: SIGKILL of a `mentionwatch run` process at a moment the emulator makes
deterministic, a 429 storm, ten minutes of Slack outage on an injected clock, and Socket Mode
connections dropped and refreshed under a running daemon.
"""

from __future__ import annotations

import logging
import signal
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from alerts.slack import SlackSender, make_client
from emulators.feeds import render_rss
from emulators.server import wait_until
from emulators.slack import DELIVER_THEN_DROP, DELIVER_THEN_HANG, rate_limited
from monitor.config import SlackConfig, load_settings
from monitor.core.records import Match, Post
from monitor.core.records import NewAlert, NewNotification
from monitor.store import Store
from tests.support.config import alert_payload, config_dict, feed_source, write_config
from tests.support.daemon import start
from tests.support.actors import KIM, LABELS, SAM

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
CHANNEL = "#acme-alerts"
APP_TOKEN = "xapp-1-A12345-daemon-5e2b"


def row(key: str, text: str, **op) -> NewAlert:
    return NewAlert(key, "test", None, "acme", CHANNEL,
                    {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}, **op)


def queue(store: Store, *alerts: NewAlert) -> list[int]:
    store.commit_routing([], list(alerts), NOW)
    keys = {a.dedupe_key for a in alerts}
    return [r.id for r in store.outbox(10_000) if r.dedupe_key in keys]


def posted_ids(slack) -> Counter:
    return Counter(m["metadata"]["event_payload"]["alert_id"] for m in slack.posted() if m.get("metadata"))


def update_texts(slack) -> Counter:
    return Counter(params.get("text") for _, params in slack.updates())


def assert_exactly_once(slack, store: Store, posts: list[int], updates: list[str]) -> None:
    """Each post or reply in Slack once, each update applied by one chat.update, nothing left queued."""
    seen = posted_ids(slack)
    assert {i: seen[i] for i in posts} == {i: 1 for i in posts}
    assert sum(seen.values()) == len(posts)
    assert {t: update_texts(slack)[t] for t in updates} == {t: 1 for t in updates}
    assert set(store.alert_counts()) == {"sent"}


# --- SIGKILL of the real daemon around each Slack call ------------------------------------------

@pytest.fixture
def daemon_config(tmp_path, database, feeds, slack):
    feeds.set_feed("blog", render_rss("blog", "https://blog.example.com/", []))
    # Long enough that a hung call is still open when the test kills the daemon; short, because on PostgreSQL
    # each restart waits for the killed leader's lease (2 x this timeout + 2 s) before it sends.
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"), interval="1h")],
                         slack={"timeout": "5s"})
    return write_config(tmp_path, config), config


def run_once(config) -> None:
    done = start(config, "--once")
    assert done.wait(60) == 0, done.stderr.read()


# Each rotation sends three rows in one batch; the second call hangs after Slack applied it, and the
# daemon is killed then: the first op is killed after its call, the second during, the third before.
ROTATIONS = [("post", "reply", "update"), ("reply", "update", "post"), ("update", "post", "reply")]


@pytest.mark.slow  # the real daemon, as a subprocess
def test_sigkill_before_during_and_after_each_op_s_slack_call(database, slack, daemon_config):
    config, _ = daemon_config
    store = Store(database)
    try:
        (parent,) = queue(store, row("parent", "parent"))
        run_once(config)
        posts, updates = [parent], []
        for n, ops in enumerate(ROTATIONS):
            make = {"post": lambda: row(f"{n}:post", f"post {n}"),
                    "reply": lambda: row(f"{n}:reply", f"reply {n}", thread_of=parent),
                    "update": lambda: row(f"{n}:update", f"update {n}", op="update", updates=parent)}
            ids = queue(store, *(make[op]() for op in ops))
            posts += [i for i, op in zip(ids, ops) if op != "update"]
            updates.append(f"update {n}")
            hang = "chat.update" if ops[1] == "update" else "chat.postMessage"
            if ops[0] != "update" and hang == "chat.postMessage":
                slack.fail(hang, None)  # the first call passes, the second hangs
            slack.fail(hang, DELIVER_THEN_HANG)
            slack.hanging.clear()
            proc = start(config)
            try:
                assert slack.hanging.wait(30), "the daemon never made the second call"
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            finally:
                if proc.poll() is None:
                    proc.kill()
            counts = store.alert_counts()
            assert counts.get("sending") == 3, counts  # nothing was recorded: all three outcomes unknown
            run_once(config)
        assert_exactly_once(slack, store, posts, updates)
        parent_message = slack.posted()[0]
        replies = [m for m in slack.posted() if m.get("thread_ts")]
        assert len(replies) == 3 and {m["thread_ts"] for m in replies} == {parent_message["ts"]}
        assert parent_message["text"] == "update 2"
        assert any(c[0] == "conversations.replies" for c in slack.calls)
    finally:
        store.close()


@pytest.mark.slow  # the real daemon, as a subprocess
def test_a_second_daemon_on_one_sqlite_file_is_refused_and_cron_cannot_send_beside_it(tmp_path, feeds, slack):
    feeds.set_feed("blog", render_rss("blog", "https://blog.example.com/", []))
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))]))
    first = start(config)
    try:
        assert wait_until(lambda: (tmp_path / "mw.db.daemon-lock").exists() and (tmp_path / "mw.db").exists(), 60)
        for args in ((), ("--once",)):
            second = start(config, *args)
            assert second.wait(60) == 75
            assert "already running on" in second.stderr.read() and first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    run_once(config)  # the kernel dropped the dead daemon's lock: the next start is not refused


def test_two_processes_draining_one_outbox_claim_each_row_once(database, slack):
    """Two stores on one database (two nodes) read the same pending rows; each row is claimed by one."""
    mine, theirs = Store(database), Store(database)
    try:
        queue(mine, *(row(f"r{i}", f"row {i}") for i in range(6)))
        seen_by_me, seen_by_them = mine.outbox(100), theirs.outbox(100)
        assert [r.id for r in seen_by_me] == [r.id for r in seen_by_them]
        taken = theirs.claim(seen_by_them[::2], NOW)
        assert mine.claim(seen_by_me, NOW) == {r.id for r in seen_by_me} - taken and len(taken) == 3
        assert theirs.claim(seen_by_them, NOW) == set(), "a row claimed by another process stays its own"
        sender_for(slack, mine, [NOW]).deliver()  # they died before posting: their rows are looked up, then sent
        assert sum(posted_ids(slack).values()) == 6 and set(posted_ids(slack).values()) == {1}
    finally:
        mine.close()
        theirs.close()


def test_a_node_that_stalls_past_its_lease_leaves_what_the_new_leader_sent_alone(database, slack):
    """A node claims a batch, stalls (a long GC pause, a frozen VM) until its lease lapses, and while it stands
    still the new leader sends the batch; back, the stalled node finds it lost the lead and stops. Nothing it
    records afterwards may put the rows back in the queue: the new leader would send them a second time."""
    mine, theirs = Store(database), Store(database)
    try:
        ids = queue(mine, *(row(f"s{i}", f"stalled {i}") for i in range(4)))
        clock = [NOW]
        stalled, leader = sender_for(slack, mine, clock), sender_for(slack, theirs, clock)

        def lease_lapsed_meanwhile() -> bool:
            clock[0] += timedelta(seconds=30)
            assert leader.deliver().sent == 4, "the new leader looks the claimed rows up, then sends them"
            return False

        stalled.still_leader = lease_lapsed_meanwhile
        assert stalled.deliver().stopped == "lost the lead"
        clock[0] += timedelta(seconds=30)
        assert leader.deliver().sent == 0
        assert_exactly_once(slack, theirs, ids, [])
    finally:
        mine.close()
        theirs.close()


# --- in-process faults on an injected clock --------------------------------------------------

@pytest.fixture
def store(database):
    store = Store(database)
    yield store
    store.close()


def sender_for(slack, store, clock) -> SlackSender:
    cfg = SlackConfig(token="xoxb-test", base_url=slack.api_url, timeout=2)
    return SlackSender(make_client(cfg), store, lambda: clock[0])


def mixed_rows(store: Store, sender: SlackSender, tag: str) -> tuple[list[int], list[str]]:
    """Two parents sent, then posts, thread replies and updates queued: (post ids, update texts)."""
    parents = queue(store, row(f"{tag}:p1", f"{tag} parent 1"), row(f"{tag}:p2", f"{tag} parent 2"))
    assert sender.deliver().sent == 2
    posts = list(parents)
    updates = []
    for i in range(4):
        parent = parents[i % 2]
        posts += queue(store, row(f"{tag}:post{i}", f"{tag} post {i}"))
        posts += queue(store, row(f"{tag}:reply{i}", f"{tag} reply {i}", thread_of=parent))
        queue(store, row(f"{tag}:update{i}", f"{tag} update {i}", op="update", updates=parent))
        updates.append(f"{tag} update {i}")
    return posts, updates


def test_a_429_storm_delays_but_never_duplicates_or_reorders(slack, store):
    clock = [NOW]
    sender = sender_for(slack, store, clock)
    posts, updates = mixed_rows(store, sender, "storm")
    for method in ("chat.postMessage", "chat.update"):
        slack.fail(method, rate_limited(30), times=3)
        slack.fail(method, None)
        slack.fail(method, rate_limited(30), times=2)
    stops = Counter()
    for _ in range(40):
        report = sender.deliver()
        stops[report.stopped] += 1
        if report.stopped == "rate_limited":  # refused, so known unsent: queued again, not left to a history lookup
            assert "sending" not in store.alert_counts()
        if not store.outbox(100):
            break
        assert sender.deliver().stopped == "paused"  # no call while Slack asked us to wait
        clock[0] += timedelta(seconds=31)
    assert stops["rate_limited"] >= 3
    assert_exactly_once(slack, store, posts, updates)
    in_order = [m["metadata"]["event_payload"]["alert_id"] for m in slack.posted() if m.get("metadata")]
    assert in_order == sorted(in_order)


def test_ten_minutes_of_slack_outage_then_recovery(slack, store, caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch.alerts.slack")
    clock = [NOW]
    sender = sender_for(slack, store, clock)
    posts, updates = mixed_rows(store, sender, "before")
    slack.fail("chat.postMessage", DELIVER_THEN_DROP)  # Slack goes down while answering the first post
    assert sender.deliver().stopped == "unavailable"
    slack.outage = True
    end = clock[0] + timedelta(minutes=10)
    n = 0
    while clock[0] < end:
        assert sender.deliver().stopped == "unavailable"
        if clock[0].minute % 2 == 0 and clock[0].second == 0:  # mentions keep coming during the outage
            posts += queue(store, row(f"during{n}", f"during {n}"))
            n += 1
        clock[0] += timedelta(seconds=30)
    assert set(store.alert_counts()) <= {"pending", "sending", "sent"}
    slack.outage = False
    while store.outbox(100):
        assert sender.deliver().stopped is None
    assert_exactly_once(slack, store, posts, updates)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Slack delivery failing" in m for m in messages) == 1
    assert sum("Slack delivery recovered" in m for m in messages) == 1


# --- Socket Mode under a running daemon -----------------------------------------------------------

def alerted_mentions(store: Store, count: int) -> list[tuple[int, int]]:
    """Fresh complaints with buttons, queued as messages the daemon will send: [(mention id, alert id)]."""
    out = []
    now = datetime.now(timezone.utc)  # the daemon runs on the real clock: nothing is overdue yet
    for n in range(count):
        post = Post("feed", f"sm{n}", f"Acme lost my data #{n}", url=f"https://blog.example.com/{n}",
                    author="mallory", created_at=now)
        (mention_id,) = store.commit_poll("acme/blog", [(post, Match({"acme": []}))], None, Counter(), now)
        store.save_labels([(mention_id, LABELS)], now)
        payload = alert_payload(mention_id, post.text, LABELS, url=post.url, author="mallory")
        alert = NewAlert(f"mention:{mention_id}", "mention", mention_id, "acme", CHANNEL, payload)
        store.commit_routed([mention_id], [NewNotification(mention_id, "acme", "root", CHANNEL, f"g{n}", False,
                                                           "queued", alert=alert)], [], now)
        out.append((mention_id, store.message_of(mention_id)))
    return out


@pytest.mark.slow  # the real daemon, as a subprocess
def test_socket_mode_reconnects_and_acts_once_across_redelivery_and_a_daemon_crash(tmp_path, slack,
                                                                                     daemon_config):
    _, config = daemon_config
    config["slack"]["app_token"] = APP_TOKEN
    path = write_config(tmp_path, config)
    channel_id = slack.add_channel(CHANNEL, members=[SAM, KIM])
    settings, _ = load_settings(path)
    store = Store(settings.storage.url)
    server = slack.socket_mode()
    (m1, a1), (m2, a2), (m3, a3) = alerted_mentions(store, 3)
    slack.users[KIM] = "kim"
    proc = start(path)
    try:
        assert server.wait_connections(1, timeout=60)  # a daemon's start (the model load) on a busy machine
        assert wait_until(lambda: {v[0] for v in store.slack_targets([a1, a2, a3]).values()} == {"sent"},
                          timeout=30), store.alert_counts()
        ts = {a: store.slack_targets([a])[a][2] for a in (a1, a2, a3)}

        def updated(alert_id: int) -> int:
            return sum(1 for t, _ in slack.updates() if t == ts[alert_id])

        server.block_action(SAM, "sam", channel_id, ts[a1], "handled", str(m1), action_ts="1700000100.000001")
        assert wait_until(lambda: updated(a1) == 1, timeout=30), "the click's update is sent at once"
        server.disconnect()  # a dropped socket is tested in test_socket_mode: noticing it takes 10 s
        assert server.wait_connections(2)
        server.block_action(SAM, "sam", channel_id, ts[a2], "not_relevant", str(m2), action_ts="1700000100.000002")
        assert wait_until(lambda: updated(a2) == 1, timeout=30)
        # Slack redelivers the first click; Kim clicks the second message again.
        server.block_action(SAM, "sam", channel_id, ts[a1], "handled", str(m1), action_ts="1700000100.000001",
                            retry_attempt=2)
        server.block_action(KIM, "kim", channel_id, ts[a2], "handled", str(m2), action_ts="1700000100.000003")
        assert wait_until(lambda: any(e["user"] == KIM for e in slack.ephemerals), timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = start(path)
        assert server.wait_connections(3, timeout=60)
        server.block_action(SAM, "sam", channel_id, ts[a1], "handled", str(m1), action_ts="1700000100.000001",
                            retry_attempt=3)
        server.reaction_added(KIM, channel_id, ts[a3], "white_check_mark", event_id="Ev9001")
        server.reaction_added(KIM, channel_id, ts[a3], "white_check_mark", event_id="Ev9001", retry_attempt=1)
        assert wait_until(lambda: updated(a3) == 1, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    run_once(path)  # anything a duplicate wrongly queued would go out now
    assert {a: updated(a) for a in (a1, a2, a3)} == {a1: 1, a2: 1, a3: 1}
    assert [e["user"] for e in slack.ephemerals] == [KIM] and "not relevant" in slack.ephemerals[0]["text"]
    assert {m: store.reply_clock(m).state for m in (m1, m2, m3)} == \
        {m1: "handled", m2: "not_relevant", m3: "handled"}
    assert max(posted_ids(slack).values()) == 1
    assert APP_TOKEN not in stderr
    store.close()
