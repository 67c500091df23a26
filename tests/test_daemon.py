"""The real `mentionwatch run` process: SIGKILL at random moments, SIGTERM, SIGHUP, --once."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from emulators.feeds import render_rss
from emulators.server import wait_until
from emulators.webhook import WebhookEmulator
from tests.support.daemon import start
from tests.support.config import TOKEN, config_dict, feed_source, store_url, write_config

NOW = datetime.now(timezone.utc)
COMPLAINTS = ["Acme Cloud is down again and support ignores me, terrible",
              "Acme billing charged me twice, awful experience, nobody answers",
              "Why is Acme Cloud so slow today? This is frustrating and broken"]

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("database")]  # the real daemon, as a subprocess; both backends


def publish(feeds, name: str, start: int, count: int) -> None:
    items = [{"id": f"{name}-{i}", "title": f"Post {i} about Acme Cloud", "link": f"https://{name}.example.com/{i}",
              "description": COMPLAINTS[i % len(COMPLAINTS)] + f" (#{i})", "published": NOW - timedelta(seconds=i)}
             for i in range(start, start + count)]
    feeds.set_feed(name, render_rss(name, f"https://{name}.example.com/", items))


def db_rows(tmp_path: Path, query: str) -> list[tuple]:
    """Rows of the test's database (either backend), read as another process would."""
    engine = create_engine(store_url(tmp_path), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


def progress(tmp_path: Path) -> tuple[int, int]:
    """What the daemons committed so far: (mentions stored, alerts sent)."""
    if store_url(tmp_path).startswith("sqlite") and not (tmp_path / "mw.db").exists():
        return 0, 0
    try:
        return (db_rows(tmp_path, "SELECT count(*) FROM mentions")[0][0],
                db_rows(tmp_path, "SELECT count(*) FROM alerts WHERE state = 'sent'")[0][0])
    except DBAPIError:  # the first daemon is still creating the tables
        return 0, 0


def outstanding(tmp_path: Path, published: int) -> int:
    """Work a killed daemon left: posts not yet stored, mentions not yet routed, alerts not yet sent."""
    stored = db_rows(tmp_path, "SELECT count(*) FROM mentions")[0][0]
    unrouted = db_rows(tmp_path, "SELECT count(*) FROM mentions WHERE routed_at IS NULL")[0][0]
    unsent = db_rows(tmp_path, "SELECT count(*) FROM alerts WHERE state != 'sent'")[0][0]
    return published - stored + unrouted + unsent


def test_sigkill_at_random_moments_loses_nothing_and_sends_nothing_twice(tmp_path, feeds, slack):
    names = ["alpha", "beta", "gamma"]
    for name in names:
        publish(feeds, name, 0, 20)
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url,
                                                [feed_source(n, feeds.url_for(n)) for n in names]))
    slack.latency = 0.02
    rng = random.Random(7)
    published = 20
    mid_work = 0
    for round_ in range(6):
        before = progress(tmp_path)
        proc = start(config)
        # Kill only once this run has committed something (however slowly the process started), and
        # soon after: a kill then lands with posts still to fetch, route or send.
        assert wait_until(lambda: progress(tmp_path) != before, timeout=60), "the daemon never committed work"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        mid_work += outstanding(tmp_path, len(names) * published) > 0
        for name in names:  # new posts keep arriving between crashes
            publish(feeds, name, 0, published + 5)
        published += 5
    assert mid_work >= 3, f"only {mid_work} of 6 kills left work outstanding"
    slack.latency = 0.0
    for _ in range(2):
        done = start(config, "--once")
        assert done.wait(60) == 0, done.stderr.read()

    stored = db_rows(tmp_path, "SELECT source_id, external_id FROM mentions")
    assert len(stored) == len(names) * published
    assert len(set(stored)) == len(stored)
    alert_ids = [m["metadata"]["event_payload"]["alert_id"] for m in slack.posted()]
    duplicates = [alert_id for alert_id, n in Counter(alert_ids).items() if n > 1]
    assert duplicates == []
    rows = db_rows(tmp_path, "SELECT id, state FROM alerts")
    assert {state for _, state in rows} == {"sent"}
    assert sorted(alert_ids) == sorted(alert_id for alert_id, _ in rows)
    unrouted = db_rows(tmp_path, "SELECT count(*) FROM mentions WHERE routed_at IS NULL")[0][0]
    assert unrouted == 0
    assert len(rows) >= len(stored) * 0.9  # the posts are complaints: nearly all must alert


def test_sigterm_stops_within_five_seconds_and_sighup_reloads_safely(tmp_path, feeds, slack):
    publish(feeds, "alpha", 0, 5)
    publish(feeds, "beta", 0, 5)
    base = config_dict(tmp_path, slack.api_url, [feed_source("alpha", feeds.url_for("alpha"))])
    config = write_config(tmp_path, base)
    proc = start(config)
    try:
        assert wait_until(lambda: len(slack.posted()) >= 5, timeout=30)
        config.write_text("brands: [not, a, mapping\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None, "an invalid config on SIGHUP must not stop the daemon"
        base["brands"]["acme"]["sources"].append(feed_source("beta", feeds.url_for("beta")))
        config.write_text(yaml.safe_dump(base))
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: feeds.hits("beta") >= 1, timeout=15), "the reloaded config adds a source"
        assert wait_until(lambda: len(slack.posted()) >= 10, timeout=30)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert "config reload failed; still running the previous config" in stderr
    assert "config.yaml:2: (top): '': valid YAML" in stderr
    assert TOKEN not in stderr + proc.stdout.read()


def test_sigterm_during_a_stalled_fetch_still_exits_quickly(tmp_path, feeds, slack):
    from emulators.server import Reply
    feeds.fail("slow", Reply(stall=30), times=10)
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [feed_source("slow", feeds.url_for("slow"))],
                                                feeds={"read_timeout": "20s"}))
    proc = start(config)
    try:
        assert wait_until(lambda: feeds.hits("slow") >= 1, timeout=20)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigkill_during_a_webhook_post_resends_it_with_the_same_key(tmp_path, feeds, slack, monkeypatch):
    """Killed after the receiver got the POST and before the answer: the next run sends it again with
    the same Idempotency-Key, so the receiver acts on every alert once."""
    secret = "daemon-hook-secret-81f3"
    monkeypatch.setenv("HOOK_SECRET", secret)
    publish(feeds, "alpha", 0, 3)
    config = config_dict(tmp_path, slack.api_url, [feed_source("alpha", feeds.url_for("alpha"))])
    with WebhookEmulator(secret) as hook:
        config["receivers"] = {"ops": {"type": "webhook", "url": hook.hook_url, "secret": "${HOOK_SECRET}"}}
        config["routes"]["receiver"] = "ops"
        path = write_config(tmp_path, config)
        hook.latency = 30.0  # the first answer never comes before the kill
        proc = start(path)
        assert wait_until(lambda: len(hook.requests) >= 1, timeout=60), "the daemon never posted"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first_key = hook.requests[0].key
        assert db_rows(tmp_path, "SELECT count(*) FROM alerts WHERE state = 'sending'")[0][0] == 1
        hook.latency = 0.0
        done = start(path, "--once")
        assert done.wait(60) == 0, done.stderr.read()
        keys = [r.key for r in hook.requests]
    rows = db_rows(tmp_path, "SELECT receiver, state FROM alerts")
    assert rows and set(rows) == {("ops", "sent")}
    assert keys.count(first_key) == 2 and all(r.signature_ok for r in hook.requests)
    assert len(hook.delivered) == len(rows) == 3 and slack.posted() == []
