"""Several `mentionwatch run` processes on one database, killed at random: each thing done once.

On PostgreSQL three nodes share the work (leases for each source and for the process job, outbox
claims that own their rows); on SQLite a second daemon on the same file is refused (test_exactly_once).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from emulators.feeds import render_rss
from emulators.server import wait_until
from emulators.slack import DELIVER_THEN_DROP, rate_limited
from tests.support.config import config_dict, feed_source, write_config
from tests.support.daemon import start

NOW = datetime.now(timezone.utc)
NAMES = ["alpha", "beta", "gamma", "delta"]
COMPLAINT = "Acme Cloud is down again and support ignores me, terrible"

pytestmark = pytest.mark.slow  # real daemons, as subprocesses


def publish(feeds, name: str, count: int) -> None:
    items = [{"id": f"{name}-{i}", "title": f"Post {i} about Acme Cloud", "link": f"https://{name}.example.com/{i}",
              "description": f"{COMPLAINT} ({name} #{i})", "published": NOW - timedelta(seconds=i)}
             for i in range(count)]
    feeds.set_feed(name, render_rss(name, f"https://{name}.example.com/", items))


def rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


def count(url: str, query: str) -> int:
    """A count, or -1 while the first node is still creating the tables."""
    try:
        return rows(url, query)[0][0]
    except DBAPIError:
        return -1


def stop(nodes) -> None:
    """SIGTERM to every node, then each waited for; one stuck past its grace is killed, as systemd would."""
    for node in nodes:
        node.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.wait(15)
        except subprocess.TimeoutExpired:
            node.kill()


def test_three_nodes_on_one_postgresql_killed_at_random_store_and_send_everything_once(
        tmp_path, postgres_databases, feeds, slack):
    url = postgres_databases.create()
    published = 10
    for name in NAMES:
        publish(feeds, name, published)
    config = config_dict(tmp_path, slack.api_url, [feed_source(n, feeds.url_for(n)) for n in NAMES],
                         storage={"url": url})
    path = write_config(tmp_path, config)
    slack.latency = 0.05
    rng = random.Random(16)
    nodes = [start(path) for _ in range(3)]
    every = list(nodes)
    try:
        assert wait_until(lambda: count(url, "SELECT count(*) FROM alerts WHERE state = 'sent'") > 0, timeout=120,
                          interval=0.5), "no node ever sent anything"
        for round_ in range(5):
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.randrange(len(nodes))
            nodes[victim].send_signal(signal.SIGKILL)  # mid-work: polls, claims and Slack calls in flight
            nodes[victim].wait(10)
            nodes[victim] = start(path)
            every.append(nodes[victim])
            published += 5
            for name in NAMES:  # posts keep arriving
                publish(feeds, name, published)
            slack.fail("chat.postMessage", DELIVER_THEN_DROP if round_ % 2 else rate_limited(1))
        expected = len(NAMES) * published

        def settled() -> bool:
            return (count(url, "SELECT count(*) FROM mentions") == expected
                    and count(url, "SELECT count(*) FROM mentions WHERE routed_at IS NULL") == 0
                    and count(url, "SELECT count(*) FROM notifications WHERE state = 'waiting'") == 0
                    and count(url, "SELECT count(*) FROM alerts WHERE state != 'sent'") == 0)

        assert wait_until(settled, timeout=120, interval=0.5), (
            rows(url, "SELECT state, count(*) FROM alerts GROUP BY state"),
            rows(url, "SELECT state, count(*) FROM notifications GROUP BY state"))
    finally:
        stop(nodes)
    logs = [node.stderr.read() for node in every]
    assert sum("now runs poll:" in log for log in logs) >= 2, "the polling was shared"
    assert sum("now runs process" in log for log in logs) >= 2, "a killed leader's work was taken over"
    stored = rows(url, "SELECT source_id, external_id FROM mentions")
    assert len(stored) == len(set(stored)) == len(NAMES) * published
    assert {source for source, _ in stored} == {f"acme/{n}" for n in NAMES}, "every source was polled"
    alert_ids = Counter(m["metadata"]["event_payload"]["alert_id"] for m in slack.posted() if m.get("metadata"))
    assert [i for i, n in alert_ids.items() if n > 1] == [], "an alert reached Slack twice"
    sent = rows(url, "SELECT id FROM alerts WHERE state = 'sent'")
    assert sorted(alert_ids) == sorted(i for i, in sent) and len(sent) >= len(stored) * 0.9, (
        rows(url, "SELECT state, count(*), count(DISTINCT alert_id) FROM notifications GROUP BY state"),
        rows(url, "SELECT count(*) FROM mentions WHERE strpos(CAST(extra AS TEXT), 'backfill') > 0"),
        rows(url, "SELECT count(*) FROM mentions WHERE id NOT IN (SELECT mention_id FROM notifications)"))
    assert all(feeds.hits(n) >= 2 for n in NAMES)


def test_a_leader_frozen_mid_burst_hands_over_and_leaves_what_the_new_leader_sent_alone(
        tmp_path, postgres_databases, feeds, slack):
    """The leader claims a burst, then freezes (SIGSTOP: a long GC pause, a suspended VM) past its lease while
    its messages go out one by one; another node leads and sends the rest. Thawed, the old leader finds it
    lost the lead and stops, leaving the rows it had claimed as the new leader recorded them: at most the one
    message it was about to post may reach Slack twice."""
    url = postgres_databases.create()
    published = 30
    publish(feeds, "alpha", published)
    config = config_dict(tmp_path, slack.api_url, [feed_source("alpha", feeds.url_for("alpha"))], storage={"url": url})
    path = write_config(tmp_path, config)
    slack.latency = 0.25  # 30 messages take over 7 s: the freeze lands mid-burst
    nodes = [start(path) for _ in range(2)]
    try:
        assert wait_until(lambda: count(url, "SELECT count(*) FROM alerts WHERE state = 'sending'") > 0
                          and len(slack.posted()) >= 3, timeout=120, interval=0.1), "no burst was being sent"
        (leader,) = rows(url, "SELECT owner FROM leases WHERE name = 'process'")[0]
        frozen = next(node for node in nodes if f":{node.pid}:" in leader)
        frozen.send_signal(signal.SIGSTOP)
        try:
            assert wait_until(lambda: rows(url, "SELECT owner FROM leases WHERE name = 'process'")[0][0] != leader,
                              timeout=60, interval=0.2), "nobody took the lead from the frozen node"
            assert wait_until(lambda: count(url, "SELECT count(*) FROM alerts WHERE state = 'sent'") == published,
                              timeout=120, interval=0.2), "the new leader did not finish the burst"
        finally:
            frozen.send_signal(signal.SIGCONT)
        time.sleep(4)  # the thawed node settles what it claimed; the leader drains whatever that left queued
        assert count(url, "SELECT count(*) FROM alerts WHERE state != 'sent'") == 0
    finally:
        stop(nodes)
    logs = [node.stderr.read() for node in nodes]
    assert "another node took over sending" in logs[nodes.index(frozen)]
    alert_ids = Counter(m["metadata"]["event_payload"]["alert_id"] for m in slack.posted() if m.get("metadata"))
    assert len(alert_ids) == published
    assert sum(alert_ids.values()) - published <= 1, f"sent twice: {[i for i, n in alert_ids.items() if n > 1]}"
