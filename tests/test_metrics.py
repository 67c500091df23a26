"""/metrics, /healthz and /readyz of a real `mentionwatch run`, scraped over loopback: the figures a
Prometheus server and a container orchestrator read, and no secret in them."""

from __future__ import annotations

import signal
import socket
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from emulators.feeds import render_rss
from emulators.server import Reply
from tests.support.config import TOKEN, config_dict, feed_source, write_config
from tests.support.daemon import start

ITEMS = [
    {"id": "1", "title": "Acme Cloud lost my data", "link": "https://x.example.com/1",
     "description": "Terrible, Acme Cloud deleted my backups.", "author": "kim"},
    {"id": "2", "title": "Unrelated", "link": "https://x.example.com/2", "description": "Nothing here."},
]
FEED_SECRET = "feedtoken-93c1e7"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for(fetch, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fetch()
            if check(value):
                return value
        except requests.ConnectionError:
            value = None
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {value!r}")
        time.sleep(0.2)


def test_a_running_daemon_serves_metrics_and_health(database, tmp_path, feeds, slack, monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", FEED_SECRET)
    feeds.set_feed("blog", render_rss("Blog", "https://x.example.com/", ITEMS))
    feeds.fail("gone", Reply(500, b"down"), times=100)
    port = free_port()
    config = write_config(tmp_path, config_dict(
        tmp_path, slack.api_url,
        [feed_source("blog", feeds.url_for("blog") + "?token=${FEED_TOKEN}"),
         feed_source("gone", feeds.url_for("gone"), interval="1h")],
        http={"listen": f"127.0.0.1:{port}"}))
    base = f"http://127.0.0.1:{port}"
    daemon = start(config)
    try:
        metrics = wait_for(lambda: requests.get(f"{base}/metrics", timeout=5).text,
                           lambda text: 'mentionwatch_posts_stored_total{source="acme/blog"} 1.0' in text
                           and "mentionwatch_classifier_queue_depth 0.0" in text
                           and "mentionwatch_outbox_pending 0.0" in text and len(slack.posted()) == 2
                           # a process run counts what it sent when it returns, just after the last post
                           and "mentionwatch_slack_messages_sent_total 2.0" in text)
        got = samples(metrics)
        assert got[("mentionwatch_posts_fetched_total", (("source", "acme/blog"),))] == 2
        assert got[("mentionwatch_posts_dropped_total", (("reason", "no_match"), ("source", "acme/blog")))] == 1
        assert got[("mentionwatch_poll_duration_seconds_count", (("source", "acme/blog"),))] >= 1
        assert got[("mentionwatch_source_health_state", (("source", "acme/blog"), ("state", "ok")))] == 1
        assert got[("mentionwatch_slack_messages_sent_total", ())] == 2  # the complaint, the broken source
        assert got[("mentionwatch_outbox_oldest_age_seconds", ())] == 0
        assert got[("mentionwatch_process_resident_memory_bytes", ())] > 1_000_000
        assert FEED_SECRET not in metrics and TOKEN not in metrics and "token=" not in metrics
        assert all(name.startswith("mentionwatch_") for name, _ in got)

        health = requests.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["alive"] is True and health.json()["ticks"] > 0
        ready = requests.get(f"{base}/readyz", timeout=5)  # a failing source retries: still ready
        assert ready.status_code == 200 and ready.json() == {"ready": True, "database": "ok", "disabled_sources": [],
                                                             "slack": "ok"}
        auth_tests = sum(method == "auth.test" for method, _, _ in slack.calls)
        for _ in range(5):
            assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        assert sum(method == "auth.test" for method, _, _ in slack.calls) == auth_tests, "auth.test is cached"
        assert got[("mentionwatch_classifier_batch_size_count", ())] >= 1
        assert got[("mentionwatch_classifier_batch_size_sum", ())] >= 1  # the complaint was labelled
        assert got[("mentionwatch_classifier_batch_duration_seconds_count", ())] >= 1
        assert got[("mentionwatch_routing_queue_depth", ())] == 0
        assert got[("mentionwatch_group_queue_depth", ())] == 0
        assert got[("mentionwatch_source_health_state", (("source", "acme/gone"), ("state", "failing")))] == 1
        assert requests.get(f"{base}/nothing", timeout=5).status_code == 404
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert FEED_SECRET not in out + err


def test_readyz_fails_while_a_source_is_disabled_or_the_database_is_gone(tmp_path):
    from datetime import datetime, timezone

    from monitor.health import SourceHealth
    from monitor.metrics import HttpServer, Metrics
    from monitor.store import Store

    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    now = datetime.now(timezone.utc)
    store.save_health(SourceHealth("acme/reddit", state="disabled", kind="auth", message="refused", since=now))
    store.save_health(SourceHealth("old/gone", state="disabled", kind="auth", since=now))  # no longer configured
    store.save_health(SourceHealth("acme/blog", state="failing", kind="rate_limited", since=now,
                                   retry_at=datetime(2030, 1, 1, tzinfo=timezone.utc)))
    metrics = Metrics(lambda: store, lambda: ["acme/blog", "acme/reddit"])
    server = HttpServer(metrics, "127.0.0.1:0").start()
    try:
        ready = requests.get(f"http://{server.address}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "database": "ok", "disabled_sources": ["acme/reddit"]}
        scraped = samples(requests.get(f"http://{server.address}/metrics", timeout=5).text)
        assert scraped[("mentionwatch_source_health_state", (("source", "acme/reddit"), ("state", "disabled")))] == 1
        assert scraped[("mentionwatch_source_health_state", (("source", "acme/blog"), ("state", "failing")))] == 1
        assert scraped[("mentionwatch_source_next_retry_timestamp_seconds", (("source", "acme/blog"),))] == (
            datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp())
        store.engine.dispose()
        (tmp_path / "mw.db").unlink()
        (tmp_path / "mw.db").mkdir()  # the database file is gone and cannot be recreated
        gone = requests.get(f"http://{server.address}/readyz", timeout=5)
        assert gone.status_code == 503 and gone.json()["ready"] is False and "unreachable" in gone.json()["database"]
    finally:
        server.stop()
        store.close()


def test_metrics_are_off_unless_configured_and_a_bad_address_is_a_config_error(database, tmp_path, slack):
    from typer.testing import CliRunner

    from monitor import cli

    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", "http://127.0.0.1:9/feed")])
    path = write_config(tmp_path, config)
    assert CliRunner().invoke(cli.app, ["validate", str(path)]).exit_code == 0
    config["http"] = {"listen": "9464"}
    result = CliRunner().invoke(cli.app, ["validate", str(write_config(tmp_path, config))])
    assert result.exit_code == 78 and "http.listen: '9464': expected host:port" in result.stderr


def test_readyz_asks_slack_about_the_token_once_per_ttl_and_only_a_refusal_makes_it_unready(tmp_path, slack):
    from alerts.slack import make_client
    from monitor.config import SlackConfig
    from monitor.metrics import HttpServer, Metrics, SlackAuth
    from monitor.store import Store

    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    clock = [0.0]
    token = ["xoxb-invalid-7f3a"]
    auth = SlackAuth(lambda: make_client(SlackConfig(token=token[0], base_url=slack.api_url)), ttl=300,
                     monotonic=lambda: clock[0])
    server = HttpServer(Metrics(lambda: store, lambda: [], slack_auth=auth), "127.0.0.1:0").start()
    readyz = f"http://{server.address}/readyz"
    try:
        for _ in range(3):
            refused = requests.get(readyz, timeout=5)
            assert refused.status_code == 503 and refused.json()["slack"] == "refused (invalid_auth)"
        assert auth.calls == 1 and sum(m == "auth.test" for m, _, _ in slack.calls) == 1
        token[0] = "xoxb-good"
        clock[0] += 301
        good = requests.get(readyz, timeout=5)
        assert good.status_code == 200 and good.json()["slack"] == "ok" and auth.calls == 2
        slack.outage = True
        clock[0] += 301
        down = requests.get(readyz, timeout=5)  # alerts wait in the outbox; a restart would not help
        assert down.status_code == 200 and down.json()["slack"].startswith("unreachable")
        assert "xoxb" not in refused.text + good.text + down.text
    finally:
        server.stop()
        store.close()


def test_api_budgets_and_x_reads_left_come_from_what_the_platform_said(tmp_path, slack):
    from prometheus_client import generate_latest

    from connectors.x.connector import reads_key
    from emulators.x import LIMITS, XEmulator
    from monitor.config import load_settings
    from monitor.daemon import build_pipeline
    from monitor.metrics import Metrics
    from monitor.store import Store

    with XEmulator(bearer_token="x-bearer-9c2f") as xapi:
        xapi.add_user("acmecloud", "Acme Cloud", 52_000, user_id="783214")
        xapi.add_user("alice", "Alice Ng", 1_234)
        for n in range(3):
            xapi.post("alice", f"Acme Cloud lost my files again ({n})")
        data = config_dict(tmp_path, slack.api_url, [{"type": "x", "name": "x", "interval": "1m"}],
                           x={"bearer_token": "x-bearer-9c2f", "base_url": xapi.url, "monthly_read_cap": 5000})
        data["brands"]["acme"]["handles"] = ["@acmecloud"]
        settings, _ = load_settings(write_config(tmp_path, data))
        store = Store(settings.storage.url)
        pipeline = build_pipeline(settings, store)
        assert pipeline.poll("acme/x").failure is None
        searches = sum(endpoint == "search" for endpoint, _ in xapi.requests)
        metrics = Metrics(lambda: store, lambda: list(pipeline.sources), x_caps=lambda: {"default": 5000})
        got = samples(generate_latest(metrics.registry).decode())
        store.close()
    used = 5000 - got[("mentionwatch_x_reads_left_this_month", (("app", "default"),))]
    assert used >= 3, "the three tweets read count against the month"
    assert got[("mentionwatch_api_requests_remaining", (("platform", "x"), ("scope", "search")))] == \
        LIMITS["search"] - searches
    assert got[("mentionwatch_api_budget_reset_timestamp_seconds", (("platform", "x"), ("scope", "search")))] > \
        time.time()


def test_reddit_rate_limit_headers_become_the_budget_metrics_show(tmp_path):
    from prometheus_client import generate_latest

    from connectors.reddit.budget import RateBudget
    from monitor.metrics import Metrics
    from monitor.store import Store

    budget = RateBudget(100, clock=lambda: 1000.0, sleep=lambda seconds: None)
    budget.observe(200, {"x-ratelimit-remaining": "587.0", "x-ratelimit-used": "13", "x-ratelimit-reset": "240"},
                   None)
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    got = samples(generate_latest(Metrics(lambda: store, lambda: []).registry).decode())
    store.close()
    assert got[("mentionwatch_api_requests_remaining", (("platform", "reddit"), ("scope", "app")))] == 587
    reset = got[("mentionwatch_api_budget_reset_timestamp_seconds", (("platform", "reddit"), ("scope", "app")))]
    assert time.time() + 200 < reset < time.time() + 250


def test_mastodon_instances_and_the_bluesky_appview_show_their_budgets(tmp_path, slack):
    from datetime import datetime, timezone

    from prometheus_client import generate_latest

    from connectors.bluesky_api import AppView, BlueskyApi
    from emulators.bsky_appview import AppViewEmulator
    from emulators.mastodon import MastodonEmulator, status
    from monitor.metrics import Metrics
    from tests.support.config import pipeline_with_clock

    with MastodonEmulator() as one, MastodonEmulator() as two, AppViewEmulator() as appview:
        one.remaining, two.remaining = 120, 280
        one.add("acmecloud", status(1, "<p>Acme Cloud is slow</p>"))
        config = config_dict(tmp_path, slack.api_url, [{"type": "mastodon", "name": "m", "interval": "2m",
                                                        "instances": [one.url, two.url]}],
                             mastodon={"connect_timeout": "1s", "read_timeout": "1s"})
        config["brands"]["acme"]["hashtags"] = ["#acmecloud"]
        pipeline, store, _ = pipeline_with_clock(tmp_path, config, datetime.now(timezone.utc))
        assert pipeline.poll("acme/m").failure is None
        appview.profile("did:plc:alice", "alice.bsky.social", followers=5)
        appview.remaining = 1
        view = AppView(BlueskyApi(base_url=appview.url))
        view.profiles(["did:plc:alice"], datetime.now(timezone.utc))
        assert view.profiles(["did:plc:bob"], datetime.now(timezone.utc)) == {}   # spent: not asked
        got = samples(generate_latest(Metrics(lambda: store, lambda: list(pipeline.sources)).registry).decode())
        store.close()
        hosts = {one: one.url.removeprefix("http://"), two: two.url.removeprefix("http://")}
        for emulator, host in hosts.items():
            key = (("platform", "mastodon"), ("scope", host))
            assert got[("mentionwatch_api_requests_remaining", key)] == emulator.remaining
            assert got[("mentionwatch_api_budget_reset_timestamp_seconds", key)] == \
                pytest.approx(emulator.reset_at.timestamp(), abs=1)
        assert got[("mentionwatch_api_requests_remaining", (("platform", "bluesky"), ("scope", "appview")))] == 0
        assert got[("mentionwatch_api_budget_reset_timestamp_seconds",
                    (("platform", "bluesky"), ("scope", "appview")))] == appview.reset_at


def test_reply_clocks_per_brand_and_slack_errors_by_kind(tmp_path, slack):
    from datetime import timedelta

    from prometheus_client import generate_latest

    from emulators.server import Reply
    from monitor.metrics import Metrics
    from tests.support.routing import NOW, add, labels, routed_pipeline

    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_by": ["mention"]}, reply_within="1h")
    add(store, "q1", labels(), NOW)
    add(store, "q2", labels(), NOW + timedelta(minutes=50))
    add(store, "fine", labels("positive", "other", needs_reply=False), NOW)
    clock[0] = NOW + timedelta(minutes=50)
    metrics = Metrics(lambda: store, lambda: [], clock=lambda: NOW + timedelta(minutes=90))
    metrics.record_delivery(pipeline.process(flush_all=True))
    slack.fail("chat.postMessage", Reply.json({"ok": False, "error": "invalid_auth"}), times=3)
    add(store, "q3", labels(), NOW + timedelta(minutes=50))
    metrics.record_delivery(pipeline.process(flush_all=True))
    got = samples(generate_latest(metrics.registry).decode())
    store.close()
    assert got[("mentionwatch_reply_clocks_open", (("brand", "acme"),))] == 3
    assert got[("mentionwatch_reply_clocks_overdue", (("brand", "acme"),))] == 1   # q1: due at 13:00, now 13:30
    assert got[("mentionwatch_slack_messages_sent_total", ())] == 2
    assert {k[1]: v for k, v in got.items() if k[0] == "mentionwatch_slack_errors_total"} == {(("kind", "auth"),): 1}
