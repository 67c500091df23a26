"""The feeds connector against the feeds emulator, through real requests + feedparser."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

import pytest

from connectors.feeds import FeedConnector
from emulators.feeds import render_atom, render_rss
from emulators.server import Reply
from connectors.feeds import FeedSource, FeedsPlatform
from monitor.config import Settings
from monitor.core.failures import FailureKind, SourceFailure
from tests.support.config import config_dict, feed_source, fixture_bytes, pipeline_with_clock

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ITEMS = [
    {"id": "a1", "title": "Acme Cloud is <b>down</b> again", "link": "https://blog.example.com/1",
     "description": "<p>Our <em>Acme Cloud</em> sites return 502 &amp; nobody answers.</p>", "author": "ann",
     "published": NOW - timedelta(minutes=5)},
    {"id": "a2", "title": "Gardening", "link": "https://blog.example.com/2", "description": "Tomatoes.",
     "published": NOW - timedelta(minutes=9)},
]


def connector(url: str, **platform) -> FeedConnector:
    defaults = {"connect_timeout": 1, "read_timeout": 1}
    settings = Settings(slack={"token": "xoxb-x"}, brands={"acme": {"names": ["Acme"], "slack_channel": "#a"}},
                        feeds=FeedsPlatform(**{**defaults, **platform}))
    # Fixed dates and recorded feeds from years ago: the first poll's lookback must not hide them here.
    return FeedConnector(FeedSource(type="feed", name="blog", url=url, first_poll_lookback="36500d"), settings)


def test_new_entries_are_parsed_with_html_stripped_and_stable_ids(feeds):
    feeds.set_feed("blog", render_rss("Blog", "https://blog.example.com/", ITEMS))
    first = connector(feeds.url_for("blog")).fetch(None)
    assert [p.title for p in first.posts] == ["Acme Cloud is down again", "Gardening"]
    assert first.posts[0].text == "Our Acme Cloud sites return 502 & nobody answers."
    assert first.posts[0].author == "ann"
    assert first.posts[0].created_at == NOW - timedelta(minutes=5)
    assert first.posts[0].url == "https://blog.example.com/1"
    again = connector(feeds.url_for("blog")).fetch(None)
    assert [p.external_id for p in again.posts] == [p.external_id for p in first.posts]
    assert len({p.external_id for p in first.posts}) == 2


def test_unchanged_feed_answers_304_and_keeps_the_cursor(feeds):
    feeds.set_feed("blog", render_rss("Blog", "https://blog.example.com/", ITEMS))
    conn = connector(feeds.url_for("blog"))
    first = conn.fetch(None)
    assert first.cursor["etag"]
    second = conn.fetch(first.cursor)
    assert second.not_modified and second.posts == []
    assert second.cursor["etag"] == first.cursor["etag"]
    assert feeds.requests[-1].headers["if-none-match"] == first.cursor["etag"]


def test_google_alerts_links_are_unwrapped_and_titles_plain():
    from connectors.feeds import entry_to_post
    import feedparser
    import io
    parsed = feedparser.parse(io.BytesIO(fixture_bytes("feeds/feedjira_google_alerts_atom.xml")))
    posts = [entry_to_post("https://www.google.com/alerts/feeds/1/2", e, None) for e in parsed.entries]
    assert len(posts) == 20
    assert not any("google.com/url" in p.url for p in posts)
    assert all(p.url.startswith("http") for p in posts)
    assert not any("<b>" in (p.title or "") for p in posts)


def test_emulated_google_alerts_feed_is_unwrapped(feeds):
    feeds.set_feed("ga", render_atom("Google Alert - Acme", ITEMS, google_alerts=True), "application/atom+xml")
    posts = connector(feeds.url_for("ga")).fetch(None).posts
    assert [p.url for p in posts] == ["https://blog.example.com/1", "https://blog.example.com/2"]


def test_stalled_server_times_out_quickly(feeds):
    feeds.set_feed("blog", render_rss("Blog", "https://blog.example.com/", ITEMS))
    feeds.fail("blog", Reply(stall=30))
    started = time.monotonic()
    with pytest.raises(SourceFailure) as info:
        connector(feeds.url_for("blog")).fetch(None)
    assert info.value.kind is FailureKind.UNAVAILABLE
    assert time.monotonic() - started < 20  # cut off by the 1 s read timeout, long before the 30 s stall ends


def test_gzip_bomb_is_cut_at_the_size_cap(feeds):
    feeds.gzip_bomb("blog", megabytes=50)
    with pytest.raises(SourceFailure) as info:
        connector(feeds.url_for("blog"), max_bytes=1_000_000).fetch(None)
    assert info.value.kind is FailureKind.BAD_PAYLOAD


@pytest.mark.parametrize("reply, kind, retry_after", [
    (Reply(429, b"slow down", {"Retry-After": "120"}), FailureKind.RATE_LIMITED, 120),
    (Reply(503, b"busy", {"Retry-After": "30"}), FailureKind.RATE_LIMITED, 30),
    (Reply(503, b"<html>down</html>"), FailureKind.UNAVAILABLE, None),
    (Reply(500, b"oops"), FailureKind.UNAVAILABLE, None),
    (Reply(404, b"nope"), FailureKind.GONE, None),
    (Reply(410, b"gone"), FailureKind.GONE, None),
    (Reply(401, b"login"), FailureKind.AUTH, None),
    (Reply(403, b"forbidden"), FailureKind.AUTH, None),
    (Reply(200, b"<html><body><form>Please log in</form></body></html>", {"Content-Type": "text/html"}),
     FailureKind.BAD_PAYLOAD, None),
    (Reply(200, b'{"error": "bad"}', {"Content-Type": "application/json"}), FailureKind.BAD_PAYLOAD, None),
    (Reply(drop=True), FailureKind.UNAVAILABLE, None),
])
def test_failures_are_classified(feeds, reply, kind, retry_after):
    feeds.fail("blog", reply)
    with pytest.raises(SourceFailure) as info:
        connector(feeds.url_for("blog")).fetch(None)
    assert info.value.kind is kind
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize("name, entries", [
    ("feedjira_youtube_atom.xml", 15),
    ("feedjira_InvalidDateFormat.xml", 2),
    ("feedparser_illformed_rss_incomplete_cdata.xml", 1),
    ("feedparser_illformed_rss_item_link_corrupted_ampersands.xml", 1),
])
def test_ill_formed_but_readable_feeds_are_accepted_with_one_warning(feeds, name, entries):
    feeds.set_feed(name, fixture_bytes(f"feeds/{name}"), "application/xml")
    conn = connector(feeds.url_for(name))
    first = conn.fetch(None)
    assert len(first.posts) == entries
    assert len(first.warnings) == 1 and "ill-formed" in first.warnings[0]
    assert conn.fetch({**first.cursor, "etag": None}).warnings == []  # still ill-formed: not repeated


@pytest.mark.parametrize("name", ["feedparser_illformed_rss_empty_document.xml", "feedparser_json_example.json"])
def test_unreadable_documents_are_bad_payload(feeds, name):
    feeds.set_feed(name, fixture_bytes(f"feeds/{name}"), "application/xml")
    with pytest.raises(SourceFailure) as info:
        connector(feeds.url_for(name)).fetch(None)
    assert info.value.kind is FailureKind.BAD_PAYLOAD


def feed_pipeline(tmp_path, feeds, slack):
    """A pipeline for one feed source whose clock the test moves by hand."""
    return pipeline_with_clock(tmp_path, config_dict(tmp_path, slack.api_url,
                                                     [feed_source("blog", feeds.url_for("blog"))]), NOW)


def test_failing_source_logs_once_when_it_breaks_and_once_when_it_recovers(tmp_path, feeds, slack, caplog):
    feeds.set_feed("blog", render_rss("Blog", "https://blog.example.com/", ITEMS))
    pipeline, store, clock = feed_pipeline(tmp_path, feeds, slack)
    feeds.fail("blog", Reply(500, b"oops"), times=5)
    caplog.set_level(logging.INFO, logger="mentionwatch")
    for _ in range(5):
        outcome = pipeline.poll("acme/blog")
        clock[0] += timedelta(hours=2)  # past any backoff
        assert outcome.failure is not None
    assert pipeline.poll("acme/blog").failure is None
    lines = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.monitor.pipeline"]
    assert len([line for line in lines if "is failing" in line]) == 1
    assert len([line for line in lines if "recovered" in line]) == 1
    assert store.get_health("acme/blog").state == "ok"
    pipeline.process()
    health_posts = [m["text"] for m in slack.posted() if "Source acme/blog" in m["text"]]
    assert len(health_posts) == 2
    assert "is failing (unavailable)" in health_posts[0] and "recovered" in health_posts[1]


def test_retry_after_is_honoured_without_polling_early(tmp_path, feeds, slack):
    pipeline, store, clock = feed_pipeline(tmp_path, feeds, slack)
    feeds.fail("blog", Reply(429, b"", {"Retry-After": "600"}))
    assert pipeline.poll("acme/blog").failure.kind is FailureKind.RATE_LIMITED
    clock[0] += timedelta(seconds=300)
    deferred = pipeline.poll("acme/blog")
    assert deferred.deferred_until == NOW + timedelta(seconds=600)
    assert feeds.hits("blog") == 1
    feeds.set_feed("blog", render_rss("Blog", "https://blog.example.com/", ITEMS))
    clock[0] += timedelta(seconds=301)
    assert pipeline.poll("acme/blog").failure is None
    assert feeds.hits("blog") == 2
