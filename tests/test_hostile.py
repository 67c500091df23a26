"""Hostile bytes: what strangers and third-party servers send never wedges a source, stops a run, blows
the memory or carries a secret out. Each case is a row, run through the real client libraries
against the loopback emulators; item cases assert that the good items around the bad one are stored."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from typer.testing import CliRunner

from connectors.http import retry_after_seconds
from emulators.app_store import AppStoreEmulator, render_page, review
from emulators.feeds import render_rss
from emulators.hackernews import HackerNewsEmulator
from emulators.reddit import RedditEmulator
from emulators.server import Reply
from emulators.x import XEmulator
from monitor import cli
from monitor.config import load_settings
from monitor.daemon import Daemon, build_pipeline
from monitor.core.failures import FailureKind, SourceFailure
from monitor.health import SourceHealth, after_failure
from monitor.core.logs import REDACTOR
from monitor.store import Store
from tests.support.config import config_dict, feed_source, pipeline_with_clock, write_config

NOW = datetime.now(timezone.utc).replace(microsecond=0)
BEARER = "x-bearer-HOSTILE-77c1e0aa"
REDDIT_SECRET = "reddit-secret-HOSTILE-0b9d"
GOOD = ["Acme Cloud lost my invoice, first", "Acme Cloud lost my invoice, last"]
DEEP = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
TWITTER_EPOCH_MS = 1288834974657


def stored_texts(store: Store) -> list[str]:
    return [f"{row['title'] or ''} {row['text'] or ''}" for row in store.export_rows(None)]


# --- platforms as the tests configure them --------------------------------------------------------

def tweet_id(n: int) -> str:
    return str(((int(NOW.timestamp() * 1000) - 60_000 - TWITTER_EPOCH_MS) << 22) + n)


def tweet(n: int, text: str | None = "Acme Cloud lost my invoice", **fields) -> dict:
    out = {"id": tweet_id(n), "author_id": "9", "created_at": (NOW - timedelta(minutes=1)).isoformat()}
    if text is not None:
        out["text"] = text
    return {**out, **fields}


def x_page(bad: dict | None, users: list | None = None) -> Reply:
    tweets = [tweet(3, GOOD[1])] + ([bad] if bad is not None else []) + [tweet(1, GOOD[0])]
    body = {"data": tweets, "includes": {"users": users or [{"id": "9", "username": "alice", "name": "Alice"}]},
            "meta": {"newest_id": tweet_id(3), "oldest_id": tweet_id(1), "result_count": len(tweets)}}
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def x_config(emu: XEmulator, tmp_path, slack) -> dict:
    return config_dict(tmp_path, slack.api_url, [{"type": "x", "name": "x", "interval": "1s", "mentions": False}],
                       x={"bearer_token": BEARER, "base_url": emu.url, "connect_timeout": "1s",
                          "read_timeout": "1s", "max_results": 10, "max_bytes": 1_000_000})


def reddit_item(n: int, text: str, **fields) -> dict:
    return {"kind": "t3", "data": {"id": f"p{n}", "created_utc": NOW.timestamp() - 60 * n, "subreddit": "acme",
                                   "title": "Invoice", "selftext": text, "author": "ann",
                                   "permalink": f"/r/acme/comments/p{n}/_/", **fields}}


def reddit_page(bad: dict | None) -> Reply:
    children = [reddit_item(1, GOOD[1])] + ([bad] if bad is not None else []) + [reddit_item(3, GOOD[0])]
    return Reply.json({"kind": "Listing", "data": {"children": children, "after": None}})


def reddit_config(emu: RedditEmulator, tmp_path, slack) -> dict:
    return config_dict(tmp_path, slack.api_url, [{"type": "reddit", "name": "posts", "subreddits": ["acme"],
                                                  "interval": "1s"}],
                       reddit={"client_id": emu.client_id, "client_secret": emu.client_secret,
                               "oauth_url": emu.url, "reddit_url": emu.url, "timeout": "1s", "max_wait": "1s",
                               "max_bytes": 1_000_000})


def hn_hit(n: int, text: str, **fields) -> dict:
    return {"objectID": str(n), "created_at_i": int(NOW.timestamp()) - 60 * n, "title": text, "author": "pg",
            "_tags": ["story"], "points": 3, **fields}


def hn_page(bad: dict | None) -> Reply:
    hits = [hn_hit(1, GOOD[1])] + ([bad] if bad is not None else []) + [hn_hit(3, GOOD[0])]
    return Reply.json({"hits": hits, "nbHits": len(hits), "nbPages": 1, "hitsPerPage": 100, "page": 0})


def hn_config(emu: HackerNewsEmulator, tmp_path, slack) -> dict:
    return config_dict(tmp_path, slack.api_url, [{"type": "hackernews", "name": "hn", "interval": "1s"}],
                       hackernews={"base_url": emu.api_url, "connect_timeout": "1s", "read_timeout": "1s",
                                   "max_bytes": 1_000_000})


def app_store_page(bad_content: str | None) -> Reply:
    items = [review("103", "Invoices", GOOD[1], 1, NOW - timedelta(minutes=1))]
    if bad_content is not None:
        items.append(review("102", "Invoices", bad_content, 1, NOW - timedelta(minutes=2)))
    items.append(review("101", "Invoices", GOOD[0], 1, NOW - timedelta(minutes=3)))
    return Reply.json(render_page("us", "1500000001", 1, items))


def app_store_config(emu: AppStoreEmulator, tmp_path, slack) -> dict:
    return config_dict(tmp_path, slack.api_url, [{"type": "app_store", "name": "ios", "apps": ["1500000001"],
                                                  "countries": ["us"], "interval": "1s"}],
                       app_store={"base_url": emu.url, "connect_timeout": "1s", "read_timeout": "1s",
                                  "max_bytes": 1_000_000})


PLATFORMS = {  # emulator, config, how a fault is served, the source id
    "x": (lambda: XEmulator(bearer_token=BEARER), x_config, lambda emu, r: emu.fail("search", r, times=4), "acme/x"),
    "reddit": (lambda: RedditEmulator(client_id=f"cid-hostile-{datetime.now().timestamp()}",
                                      client_secret=REDDIT_SECRET), reddit_config,
               lambda emu, r: emu.fail("/r/acme/new", r, times=4), "acme/posts"),
    "hackernews": (HackerNewsEmulator, hn_config, lambda emu, r: emu.fail(r, times=4), "acme/hn"),
    "app_store": (AppStoreEmulator, app_store_config, lambda emu, r: emu.fail(r, times=4), "acme/ios"),
}


def poll_once(platform: str, reply: Reply, tmp_path, slack):
    make, config_of, serve, source_id = PLATFORMS[platform]
    with make() as emu:
        serve(emu, reply)
        pipeline, store, _ = pipeline_with_clock(tmp_path, config_of(emu, tmp_path, slack), NOW)
        outcome = pipeline.poll(source_id)
    return outcome, store, source_id


# --- 1. every item judged alone -------------------------------------------------------------------

ITEMS = [
    # platform, the bad item's page, what of it is stored (None: skipped as malformed)
    ("x", x_page(tweet(2, "Acme Cloud \ud800 broke")), "Acme Cloud \ufffd broke"),
    ("x", x_page(tweet(2, "Acme Cloud \x00 broke")), "Acme Cloud \ufffd broke"),
    ("x", x_page(tweet(2, None)), None),
    ("x", x_page(tweet(2, "username an int"), [{"id": "9", "username": 12345}]), "username an int"),
    ("x", x_page(tweet(2, "created_at an int", created_at=12345)), "created_at an int"),
    ("x", x_page(tweet(2, "refs a string", referenced_tweets="oops")), "refs a string"),
    ("x", x_page(tweet(2, "id too big", id=10 ** 30)), None),
    ("x", x_page("not a tweet"), None),
    ("reddit", reddit_page(reddit_item(2, "Acme Cloud \ud800 broke")), "Acme Cloud \ufffd broke"),
    ("reddit", reddit_page(reddit_item(2, "Acme Cloud huge time", created_utc=1e20)), None),
    ("reddit", reddit_page(reddit_item(2, "Acme Cloud author an int", author=12345)), "Acme Cloud author an int"),
    ("reddit", reddit_page(reddit_item(2, "Acme Cloud title a dict", title={"x": 1})), "Acme Cloud title a dict"),
    ("hackernews", hn_page(hn_hit(2, "Acme Cloud \ud800 broke")), "Acme Cloud \ufffd broke"),
    ("hackernews", hn_page(hn_hit(2, "Acme Cloud author a dict", author={"x": 1})), "Acme Cloud author a dict"),
    ("hackernews", hn_page({**hn_hit(2, "x"), "title": 12345, "story_text": "Acme Cloud title an int"}),
     "Acme Cloud title an int"),
    ("hackernews", hn_page(hn_hit(2, "Acme Cloud far future", created_at_i=10 ** 15)), "skipped without a count"),
    ("app_store", app_store_page("Acme Cloud \ud800 broke \x00"), "Acme Cloud \ufffd broke \ufffd"),
]


@pytest.mark.parametrize("platform, reply, kept", ITEMS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ITEMS)])
def test_a_bad_item_never_fails_its_page(database, tmp_path, slack, platform, reply, kept):
    outcome, store, source_id = poll_once(platform, reply, tmp_path, slack)
    assert outcome.failure is None
    texts = stored_texts(store)
    assert all(any(good in text for text in texts) for good in GOOD), texts
    assert store.get_health(source_id).state == "ok" and store.get_cursor(source_id)
    if kept is None:
        assert store.drop_counts()[source_id]["malformed"] == 1 and len(texts) == 2
    elif kept != "skipped without a count":
        assert any(kept in text for text in texts), texts


PAGES = [
    # platform, a page no client can read: classified, health updated, never a crash
    ("x", Reply(200, json.dumps({"errors": ["x"]}).encode(), {"Content-Type": "application/json"}), FailureKind.GONE),
    ("x", Reply(200, DEEP, {"Content-Type": "application/json"}), FailureKind.BAD_PAYLOAD),
    ("x", Reply(400, b'{"errors": 5, "title": []}', {"Content-Type": "application/json"}), FailureKind.BAD_PAYLOAD),
    ("x", Reply(403, b'["a list"]', {"Content-Type": "application/json"}), FailureKind.BAD_PAYLOAD),
    ("x", Reply(200, b'{"data": {"id": "1"}, "meta": []}', {"Content-Type": "application/json"}), None),
    ("reddit", Reply(200, DEEP, {"Content-Type": "application/json"}), FailureKind.BAD_PAYLOAD),
    ("reddit", Reply.json({"kind": "Listing", "data": {"children": "oops"}}), FailureKind.BAD_PAYLOAD),
    ("hackernews", Reply(200, DEEP, {"Content-Type": "application/json"}), FailureKind.BAD_PAYLOAD),
    ("hackernews", Reply.json({"hits": [1, "x", None], "nbHits": 3, "nbPages": 1, "hitsPerPage": 3}), None),
    ("app_store", Reply(200, DEEP, {"Content-Type": "application/json"}), FailureKind.BAD_PAYLOAD),
    # an answer shaped so the connector's own parsing raises: classified by the pipeline, not "unexpected"
    ("app_store", Reply.json({"feed": {"entry": [{"id": 1}], "link": [{"attributes": "x"}]}}), FailureKind.BAD_PAYLOAD),
]


@pytest.mark.parametrize("platform, reply, kind", PAGES, ids=[f"{p[0]}-{i}" for i, p in enumerate(PAGES)])
def test_an_unreadable_page_is_a_classified_failure(database, tmp_path, slack, platform, reply, kind):
    outcome, store, source_id = poll_once(platform, reply, tmp_path, slack)
    health = store.get_health(source_id)
    if kind is None:
        assert outcome.failure is None and health.state == "ok"
    else:
        assert outcome.failure is not None and outcome.failure.kind is kind
        assert health.state == "failing" and health.kind == kind.value and health.last_attempt_at is not None


# --- 2. bounded in time and size, and Retry-After read with sense -------------------------------

def drip(body: bytes) -> Reply:
    return Reply(200, body, {"Content-Type": "application/json"}, drip=0.5)


def bomb() -> Reply:
    return Reply(200, gzip.compress(b"[" + b" " * 50_000_000 + b"]"),
                 {"Content-Type": "application/json", "Content-Encoding": "gzip"})


def too_big_compressed() -> Reply:
    return Reply(200, gzip.compress(bytes(range(256)) * 8000, compresslevel=0),
                 {"Content-Type": "application/json", "Content-Encoding": "gzip"})


BOUNDS = [(platform, name, reply, kind) for platform in PLATFORMS for name, reply, kind in [
    ("drip", drip(b'{"data": []}' + b" " * 200), FailureKind.UNAVAILABLE),
    ("gzip bomb", bomb(), FailureKind.BAD_PAYLOAD),
    ("compressed over the cap", too_big_compressed(), FailureKind.BAD_PAYLOAD),
]]


@pytest.mark.parametrize("platform, name, reply, kind", BOUNDS, ids=[f"{b[0]}-{b[1]}" for b in BOUNDS])
def test_every_connector_bounds_time_and_size(database, tmp_path, slack, platform, name, reply, kind):
    """A drip of 200 bytes at 0.5 s each would take 100 s; the deadline is connect + 2 reads (3 s)."""
    started = datetime.now(timezone.utc)
    outcome, store, source_id = poll_once(platform, reply, tmp_path, slack)
    assert outcome.failure is not None and outcome.failure.kind is kind, outcome.failure
    assert store.get_health(source_id).state == "failing"
    assert datetime.now(timezone.utc) - started < timedelta(seconds=30)


def test_feeds_bound_a_drip_too(database, tmp_path, feeds, slack):
    feeds.fail("blog", drip(render_rss("Blog", "https://b.example/", [])), times=3)
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))])
    pipeline, store, _ = pipeline_with_clock(tmp_path, config, NOW)
    started = datetime.now(timezone.utc)
    outcome = pipeline.poll("acme/blog")
    assert outcome.failure.kind is FailureKind.UNAVAILABLE and "took too long" in outcome.failure.message
    assert datetime.now(timezone.utc) - started < timedelta(seconds=30)


FAR = format_datetime(datetime(2065, 10, 21, 7, 28, tzinfo=timezone.utc), usegmt=True)
SOON = format_datetime(NOW + timedelta(minutes=5), usegmt=True)
RETRY_AFTER = [("nan", None), ("inf", 86400.0), ("-inf", 1.0), ("1e308", 86400.0), ("99999999999", 86400.0),
               ("-5", 1.0), ("120", 120.0), (FAR, 86400.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 1.0),
               ("Mon, 99 Foo 2026 99:99:99 GMT", None), ("", None), ("soon", None)]


@pytest.mark.parametrize("value, seconds", RETRY_AFTER)
def test_retry_after_is_read_in_both_forms_and_clamped(value, seconds):
    assert retry_after_seconds(value) == seconds
    failure = SourceFailure(FailureKind.RATE_LIMITED, "slow down", float(value) if seconds and value[0] in "-0123456789in"
                            else seconds)
    health, _ = after_failure(SourceHealth("acme/x"), failure, timedelta(minutes=1), NOW)
    if seconds is None:
        assert health.retry_at is None  # no wait named: the usual backoff from the next failure on
    else:
        assert NOW + timedelta(seconds=1) <= health.retry_at <= NOW + timedelta(hours=24)


def test_an_http_date_retry_after_is_read_too():
    assert 280 <= retry_after_seconds(SOON, NOW) <= 300


RATE_LIMITS = [(platform, value) for platform in ("x", "reddit", "hackernews", "app_store")
               for value in ("nan", "inf", "1e308", "99999999999", FAR)]


@pytest.mark.parametrize("platform, value", RATE_LIMITS)
def test_a_429_with_a_hostile_reset_pauses_the_source_for_at_most_a_day(database, tmp_path, slack, platform, value):
    header = {"x": "x-rate-limit-reset"}.get(platform, "Retry-After")
    outcome, store, source_id = poll_once(platform, Reply(429, b"{}", {header: value}), tmp_path, slack)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.RATE_LIMITED
    retry_at = store.get_health(source_id).retry_at
    assert retry_at is None or retry_at <= NOW + timedelta(hours=24, minutes=1)


# --- 3. run --once polls every source whatever the others do -------------------------------------

@pytest.mark.parametrize("broken", [Reply(404, b"gone"), Reply(200, b"\x00\xff not a feed"),
                                    drip(b"<rss>" + b" " * 100)])
def test_run_once_polls_every_source_then_sends_and_says_a_source_failed(database, tmp_path, feeds, slack, broken):
    feeds.set_feed("good", render_rss("Good", "https://g.example/", [
        {"id": "1", "title": "Acme Cloud lost my invoice", "link": "https://g.example/1",
         "description": "Acme Cloud billed me twice, support ignores me, awful"}]))
    feeds.fail("bad", broken, times=3)
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [
        feed_source("bad", feeds.url_for("bad")), feed_source("good", feeds.url_for("good"))]))
    settings, _ = load_settings(config)
    daemon = Daemon(str(config), settings)
    try:
        assert daemon.run_once() == 1
    finally:
        daemon.store.close()
    assert any("Acme Cloud lost my invoice" in str(m) for m in slack.posted())


# --- 4. secrets never leave ---------------------------------------------------------------------

FEED_TOKEN = "feedtok-HOSTILE-93a1c7"
PASSWORD = "pw-HOSTILE-41d2e8"


@pytest.mark.parametrize("url", ["{base}?token=${{FEED_TOKEN}}", "{scheme}://reader:${{FEED_PASS}}@{rest}"])
def test_a_secret_in_a_feed_url_never_leaves(database, tmp_path, feeds, slack, caplog, monkeypatch, url):
    base = feeds.url_for("missing")
    scheme, rest = base.split("://")
    data = config_dict(tmp_path, slack.api_url, [feed_source("blog", url.format(base=base, scheme=scheme, rest=rest))])
    path = write_config(tmp_path, data)
    env = {"FEED_TOKEN": FEED_TOKEN, "FEED_PASS": PASSWORD}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings, _ = load_settings(path, env)
    feeds.fail("missing", Reply(404, f"no {FEED_TOKEN} {PASSWORD} here".encode()), times=2)
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(REDACTOR)  # as setup_logging puts it on the daemon's handler
    store = Store(settings.storage.url)
    pipeline = build_pipeline(settings, store)
    outcome = pipeline.poll("acme/blog")
    pipeline.process(flush_all=True)
    assert outcome.failure is not None
    status = CliRunner().invoke(cli.app, ["status", "--config", str(path)], env=env)
    seen = [outcome.failure.message, str(outcome.failure), store.get_health("acme/blog").message,
            json.dumps(slack.posted()), status.output, caplog.text]
    for text in seen:
        assert FEED_TOKEN not in text and PASSWORD not in text
    assert "<secret>" in store.get_health("acme/blog").message
    store.close()


def test_an_x_error_body_echoing_the_token_is_not_stored_or_sent(database, tmp_path, slack):
    echo = json.dumps({"title": "Forbidden", "detail": f"token {BEARER} is not allowed"}).encode()
    outcome, store, source_id = poll_once("x", Reply(403, echo, {"Content-Type": "application/json"}), tmp_path,
                                          slack)
    assert outcome.failure.kind is FailureKind.AUTH
    health = store.get_health(source_id)
    with store.engine.connect() as conn:
        outbox = json.dumps([row[0] for row in conn.exec_driver_sql("SELECT payload FROM alerts")])
    assert "is failing" in outbox
    assert BEARER not in health.message and BEARER not in outcome.failure.message and BEARER not in outbox
    assert "<secret>" in health.message
    store.close()


# --- 6. CSV export is safe to open --------------------------------------------------------------

FORMULAS = ["=HYPERLINK(\"https://evil.example\",\"click\")", "=1+2", "+1", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR"]


def test_csv_export_neutralises_formulas(database, tmp_path, feeds, slack):
    feeds.set_feed("blog", render_rss("Blog", "https://b.example/", [
        {"id": str(i), "title": f"Acme Cloud {i}", "link": f"https://b.example/{i}", "description": formula}
        for i, formula in enumerate(FORMULAS)]))
    data = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"), require_match=False)])
    path = write_config(tmp_path, data)
    pipeline, store, _ = pipeline_with_clock(tmp_path, data, NOW)
    pipeline.poll("acme/blog")
    store.close()
    result = CliRunner().invoke(cli.app, ["export", "--format", "csv", "--config", str(path)])
    assert result.exit_code == 0, result.output
    cells = [cell for row in csv.reader(io.StringIO(result.stdout)) for cell in row]
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert sum(cell.startswith("'") for cell in cells) >= 5


# --- attacks that already failed safely stay that way ---------------------------------------------

LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
                     for i in range(1, 10))
          + b']><rss version="2.0"><channel><title>t</title><item><guid>1</guid><title>Acme Cloud &lol9;</title>'
          b'<link>https://b.example/1</link></item></channel></rss>')
XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel>'
       b'<title>t</title><item><guid>1</guid><title>Acme Cloud &x;</title><link>https://b.example/1</link>'
       b'<description>Acme Cloud</description></item></channel></rss>')


@pytest.mark.parametrize("body", [LAUGHS, XXE], ids=["billion laughs", "external entity"])
def test_feed_entities_are_never_expanded(database, tmp_path, feeds, slack, body):
    feeds.set_feed("blog", body)
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))])
    pipeline, store, _ = pipeline_with_clock(tmp_path, config, NOW)
    pipeline.poll("acme/blog")
    texts = " ".join(stored_texts(store))
    assert "root:" not in texts and "lollollol" not in texts


def test_a_redirect_to_another_host_drops_the_credentials(database, tmp_path, feeds, slack):
    feeds.set_feed("good", render_rss("Good", "https://g.example/", [
        {"id": "1", "title": "Acme Cloud lost my invoice", "link": "https://g.example/1"}]))
    other = feeds.url_for("good").replace("127.0.0.1", "localhost")
    feeds.fail("moved", Reply(302, b"", {"Location": other}))
    scheme, rest = feeds.url_for("moved").split("://")
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", f"{scheme}://reader:{PASSWORD}@{rest}")])
    pipeline, store, _ = pipeline_with_clock(tmp_path, config, NOW)
    assert pipeline.poll("acme/blog").failure is None
    first, second = feeds.requests[-2:]
    assert "authorization" in first.headers and "authorization" not in second.headers
    assert any("lost my invoice" in text for text in stored_texts(store))
