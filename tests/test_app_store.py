"""The App Store reviews connector against the feed emulator, through real requests, and the pipeline."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from connectors.app_store import AppStoreConnector, parse_page
from emulators.app_store import AppStoreEmulator, render_page, review
from emulators.server import Reply
from monitor.config import ConfigError, Settings, load_settings
from monitor.core.failures import FailureKind, SourceFailure
from monitor.store import Store
from tests.support.config import config_dict, write_config, pipeline_with_clock

DATA = Path(__file__).parent / "data" / "app_store"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
APP = "1500000001"


def sample(name: str) -> dict:
    return json.loads((DATA / name).read_text())["response"]


def reviews(count: int, start: int = 0, rating: int = 4, newest: datetime = NOW) -> list[dict]:
    """`count` reviews one minute apart, the first the newest; ids count up with time."""
    return [review(str(10_000 + start + count - i), f"Review {start + count - i}", "Works as expected.", rating,
                   newest - timedelta(minutes=i), author=f"user{start + count - i}") for i in range(count)]


@pytest.fixture
def store_feed():
    with AppStoreEmulator() as emulator:
        yield emulator


def source_dict(**extra) -> dict:
    # Fixed dates and recorded reviews: the first poll's lookback (tested on its own) must not hide them here.
    return {"type": "app_store", "name": "ios", "apps": [APP], "countries": ["us"], "interval": "1s",
            "first_poll_lookback": "3650d", **extra}


def connector(emulator: AppStoreEmulator, source: dict | None = None, **platform) -> AppStoreConnector:
    settings = Settings(slack={"token": "xoxb-x"},
                        app_store={"base_url": emulator.url, "connect_timeout": 1, "read_timeout": 1, **platform},
                        brands={"acme": {"names": ["Acme Cloud"], "slack_channel": "#a",
                                         "sources": [source or source_dict()]}})
    return AppStoreConnector(settings.brands["acme"].sources[0], settings)


# --- the wire format ---------------------------------------------------------------------------

def test_sample_page_reads_reviews_and_skips_the_app_metadata_entry():
    page = parse_page(json.dumps(sample("customerreviews_page1.json")).encode(), "sample")
    assert [r.review_id for r in page.reviews] == ["11000000003", "11000000002", "11000000001"]
    first, _, last = page.reviews
    assert (first.rating, first.version, first.author, first.title) == (2, "4.2.1", "dana_ops", "Fine I guess")
    assert first.updated == datetime(2026, 11, 20, 10, 55, 12, tzinfo=timezone.utc)  # -07:00 in the feed
    assert last.author == "sam <admin>" and last.body.startswith("Opens, shows the logo")
    assert page.last_page == 1 and page.malformed == 0


def test_single_entry_object_and_missing_entry_are_read():
    single = parse_page(json.dumps(sample("customerreviews_single_entry.json")).encode(), "sample")
    assert [(r.review_id, r.rating) for r in single.reviews] == [("11000000100", 4)]
    empty = parse_page(json.dumps(sample("customerreviews_empty.json")).encode(), "sample")
    assert empty.reviews == [] and empty.malformed == 0


def test_emulator_answers_in_the_sample_shape():
    recorded = sample("customerreviews_page1.json")["feed"]
    items = reviews(3)
    rendered = render_page("us", APP, 1, items, metadata="Acme Cloud")["feed"]
    assert set(rendered) == set(recorded)
    assert set(rendered["entry"][0]) == set(recorded["entry"][0])  # app metadata first
    assert set(rendered["entry"][1]) == set(recorded["entry"][1])
    assert set(rendered["entry"][1]["author"]) == set(recorded["entry"][1]["author"])
    assert [link["attributes"]["rel"] for link in rendered["link"]] == \
        [link["attributes"]["rel"] for link in recorded["link"]]
    assert isinstance(render_page("gb", APP, 1, items[:1])["feed"]["entry"], dict)
    assert "entry" not in render_page("us", APP, 2, items)["feed"]


# --- posts ---------------------------------------------------------------------------------------

def test_reviews_become_posts_with_rating_version_country_and_a_reply_hint_at_low_ratings(store_feed):
    store_feed.metadata[("us", APP)] = "Acme Cloud"
    store_feed.add_reviews("us", APP, [
        review("501", "Fine I guess", "Logs in. A bit slow.", 2, NOW, author="dana", version="4.2.1"),
        review("502", "Love it", "Great & fast <3", 5, NOW - timedelta(minutes=1)),
        review("503", "Meh", "Okay.", 3, NOW - timedelta(minutes=2)),
    ])
    posts = connector(store_feed).fetch(None).posts
    assert [p.external_id for p in posts] == ["503", "502", "501"]  # oldest first
    mild = posts[2]
    assert mild.source == "app_store" and mild.author == "dana"
    assert mild.title == "★★☆☆☆ Fine I guess" and mild.text == "Logs in. A bit slow."
    assert mild.created_at == NOW
    assert mild.url.startswith("https://itunes.apple.com/us/review?id=" + APP)
    assert mild.extra == {"rating": 2, "version": "4.2.1", "country": "us", "app_id": APP,
                          "needs_reply_hint": "2-star review"}
    assert "needs_reply_hint" not in posts[0].extra and "needs_reply_hint" not in posts[1].extra
    assert posts[1].text == "Great & fast <3"


@pytest.mark.parametrize("threshold, hinted", [(0, set()), (3, {"2-star review", "3-star review"})])
def test_reply_hint_threshold_is_configurable(store_feed, threshold, hinted):
    store_feed.add_reviews("us", APP, [review("1", "a", "x", 2, NOW), review("2", "b", "y", 3, NOW),
                                       review("3", "c", "z", 4, NOW)])
    posts = connector(store_feed, source_dict(needs_reply_at_or_below=threshold)).fetch(None).posts
    assert {p.extra["needs_reply_hint"] for p in posts if "needs_reply_hint" in p.extra} == hinted


# --- cursors and paging ---------------------------------------------------------------------------

def test_first_poll_takes_the_configured_pages_then_polls_stop_at_the_cursor(store_feed):
    store_feed.add_reviews("us", APP, reviews(120))
    conn = connector(store_feed, initial_pages=1)
    first = conn.fetch(None)
    assert len(first.posts) == 50 and store_feed.pages_requested() == [1]
    store_feed.add_reviews("us", APP, reviews(3, start=120, newest=NOW + timedelta(minutes=3)))
    second = conn.fetch(first.cursor)
    assert [p.external_id for p in second.posts] == ["10121", "10122", "10123"]
    assert store_feed.pages_requested() == [1, 1, 2]  # page 2: where the first poll's oldest review went
    third = conn.fetch(second.cursor)
    assert third.posts == [] and third.gaps == []


def test_many_new_reviews_are_read_across_pages_until_the_cursor(store_feed):
    store_feed.add_reviews("us", APP, reviews(10, newest=NOW - timedelta(hours=5)))
    conn = connector(store_feed)
    first = conn.fetch(None)
    store_feed.add_reviews("us", APP, reviews(130, start=10))
    second = conn.fetch(first.cursor)
    assert len(second.posts) == 130 and len({p.external_id for p in second.posts}) == 130
    assert store_feed.pages_requested()[1:] == [1, 2, 3]
    assert second.gaps == []


def test_reviews_pushed_onto_the_next_page_while_paging_are_returned_once(store_feed):
    store_feed.add_reviews("us", APP, reviews(5, newest=NOW - timedelta(hours=5)))
    conn = connector(store_feed)
    cursor = conn.fetch(None).cursor
    store_feed.add_reviews("us", APP, reviews(70, start=5))
    store_feed.arrive_before_page(2, "us", APP, reviews(4, start=75, newest=NOW + timedelta(minutes=4)))
    second = conn.fetch(cursor)
    ids = [p.external_id for p in second.posts]
    assert len(ids) == len(set(ids)) == 70  # the 4 pushed from page 1 to page 2 are returned once
    third = conn.fetch(second.cursor)  # the 4 that arrived mid-poll sit on page 1, read now
    assert [p.external_id for p in third.posts] == ["10076", "10077", "10078", "10079"]


def test_more_new_reviews_than_the_page_budget_are_recorded_as_a_gap(store_feed):
    store_feed.add_reviews("us", APP, reviews(3, newest=NOW - timedelta(days=1)))
    conn = connector(store_feed, max_pages=2)
    cursor = conn.fetch(None).cursor
    store_feed.add_reviews("us", APP, reviews(150, start=3))
    result = conn.fetch(cursor)
    assert len(result.posts) == 100
    [gap] = result.gaps
    assert gap.window_start == NOW - timedelta(days=1)
    assert gap.window_end == min(p.created_at for p in result.posts)
    assert "2 pages" in gap.reason and APP in gap.reason


def test_review_published_late_with_an_older_timestamp_is_still_found(store_feed):
    store_feed.add_reviews("us", APP, reviews(5))
    conn = connector(store_feed)
    cursor = conn.fetch(None).cursor
    store_feed.add_reviews("us", APP, [review("777", "Moderated late", "x", 1, NOW - timedelta(seconds=150))])
    assert [p.external_id for p in conn.fetch(cursor).posts] == ["777"]


def test_each_app_and_country_keeps_its_own_cursor(store_feed):
    source = source_dict(apps=[APP, "2"], countries=["us", "gb"])
    for country, app in [("us", APP), ("gb", APP), ("us", "2"), ("gb", "2")]:
        store_feed.add_reviews(country, app, [review(f"{country}{app}", "t", "b", 5, NOW)])
    conn = connector(store_feed, source)
    first = conn.fetch(None)
    assert {(p.extra["country"], p.extra["app_id"]) for p in first.posts} == \
        {("us", APP), ("gb", APP), ("us", "2"), ("gb", "2")}
    store_feed.add_reviews("gb", "2", [review("late-gb", "t", "b", 1, NOW + timedelta(minutes=1))])
    assert [p.external_id for p in conn.fetch(first.cursor).posts] == ["late-gb"]


def test_unreadable_entries_are_skipped_with_one_warning(store_feed):
    body = render_page("us", APP, 1, reviews(2))
    body["feed"]["entry"][0]["im:rating"] = {"label": "five"}
    store_feed.fail(Reply.json(body), times=2)
    conn = connector(store_feed)
    first = conn.fetch(None)
    assert len(first.posts) == 1 and len(first.warnings) == 1 and "skipped" in first.warnings[0]
    assert conn.fetch(first.cursor).warnings == []


# --- failures -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, kind, retry_after", [
    (Reply(429, b"", {"Retry-After": "120"}), FailureKind.RATE_LIMITED, 120),
    (Reply(503, b"busy", {"Retry-After": "30"}), FailureKind.RATE_LIMITED, 30),
    (Reply(500, b"oops"), FailureKind.UNAVAILABLE, None),
    (Reply(502, b"<html>bad gateway</html>"), FailureKind.UNAVAILABLE, None),
    (Reply(404, b"not found"), FailureKind.GONE, None),
    (Reply(403, b"forbidden"), FailureKind.AUTH, None),
    (Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}), FailureKind.BAD_PAYLOAD, None),
    (Reply.json({"error": "nope"}), FailureKind.BAD_PAYLOAD, None),
    (Reply.json({"feed": {"entry": "oops"}}), FailureKind.BAD_PAYLOAD, None),
    (Reply(drop=True), FailureKind.UNAVAILABLE, None),
])
def test_failures_are_classified(store_feed, reply, kind, retry_after):
    store_feed.fail(reply)
    with pytest.raises(SourceFailure) as info:
        connector(store_feed).fetch(None)
    assert info.value.kind is kind and info.value.retry_after == retry_after
    assert APP in info.value.message


def test_stalled_feed_times_out_quickly(store_feed):
    store_feed.fail(Reply(stall=30))
    started = time.monotonic()
    with pytest.raises(SourceFailure) as info:
        connector(store_feed).fetch(None)
    assert info.value.kind is FailureKind.UNAVAILABLE and "timed out" in info.value.message
    assert time.monotonic() - started < 20  # cut off by the 1 s read timeout, long before the 30 s stall ends


def test_bad_config_names_the_key(tmp_path):
    path = write_config(tmp_path, config_dict(tmp_path, "http://127.0.0.1:1/api/", [
        source_dict(apps=["acme-cloud"], countries=["usa"])]))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert "brands.acme.sources.0.apps" in text and "numeric app ids" in text
    assert "brands.acme.sources.0.countries" in text and "two-letter" in text


# --- through the pipeline ---------------------------------------------------------------------------

def pipeline_for(tmp_path, emulator, slack, **platform):
    config = config_dict(tmp_path, slack.api_url, [source_dict()],
                         app_store={"base_url": emulator.url, "connect_timeout": "1s", "read_timeout": "1s", **platform})
    return pipeline_with_clock(tmp_path, config, NOW)


def stored_ids(store: Store) -> list[str]:
    return [row["external_id"] for row in store.export_rows(None)]


def test_mild_low_rating_review_alerts_through_slack(tmp_path, store_feed, slack):
    store_feed.add_reviews("us", APP, [
        review("901", "It's okay", "The app opens and shows my sites.", 2, NOW),
        review("902", "Nice", "The app opens and shows my sites.", 5, NOW - timedelta(minutes=1)),
    ])
    pipeline, store, _ = pipeline_for(tmp_path, store_feed, slack)
    assert pipeline.poll("acme/ios").failure is None
    pipeline.process()
    [message] = slack.posted("#acme-alerts")
    assert message["blocks"][0]["text"]["text"] == "2-star review: Acme Cloud"
    assert "★★☆☆☆ It's okay" in message["blocks"][1]["text"]["text"]
    assert stored_ids(store) == ["902", "901"]


def test_restart_resumes_from_the_stored_cursor(tmp_path, store_feed, slack):
    store_feed.add_reviews("us", APP, reviews(80))
    pipeline, store, _ = pipeline_for(tmp_path, store_feed, slack, initial_pages=1)
    pipeline.poll("acme/ios")
    assert len(stored_ids(store)) == 50
    store.close()
    store_feed.add_reviews("us", APP, reviews(2, start=80, newest=NOW + timedelta(minutes=2)))
    pipeline, store, _ = pipeline_for(tmp_path, store_feed, slack, initial_pages=1)  # a new process
    outcome = pipeline.poll("acme/ios")
    assert len(outcome.new_ids) == 2
    assert stored_ids(store)[-2:] == ["10081", "10082"] and len(stored_ids(store)) == 52
    assert store_feed.pages_requested() == [1, 1, 2]  # down to the oldest review the first poll took


def test_duplicates_across_pages_are_stored_once(tmp_path, store_feed, slack):
    store_feed.add_reviews("us", APP, reviews(3, newest=NOW - timedelta(hours=5)))
    pipeline, store, _ = pipeline_for(tmp_path, store_feed, slack)
    pipeline.poll("acme/ios")
    store_feed.add_reviews("us", APP, reviews(60, start=3))
    store_feed.arrive_before_page(2, "us", APP, reviews(5, start=63, newest=NOW + timedelta(minutes=5)))
    outcome = pipeline.poll("acme/ios")
    assert len(outcome.new_ids) == outcome.fetched == 60
    pipeline.poll("acme/ios")
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 68


def test_failure_table_logs_one_line_per_state_change(tmp_path, store_feed, slack, caplog):
    store_feed.add_reviews("us", APP, reviews(3))
    pipeline, store, clock = pipeline_for(tmp_path, store_feed, slack)
    script = [Reply(429, b"", {"Retry-After": "60"}), Reply(500, b"oops"), Reply(503, b"down"), Reply(stall=5),
              Reply(200, b"{not json"), Reply(404, b"gone")]
    caplog.set_level(logging.INFO, logger="mentionwatch")
    for reply in script:
        store_feed.fail(reply)
        outcome = pipeline.poll("acme/ios")
        assert outcome.failure is not None
        clock[0] += timedelta(hours=2)  # past any backoff
    assert pipeline.poll("acme/ios").failure is None
    lines = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.monitor.pipeline" and r.levelno >= logging.INFO]
    failing = [line for line in lines if "is failing" in line]
    assert [line.split("(")[1].split(")")[0] for line in failing] == \
        ["rate_limited", "unavailable", "bad_payload", "gone"]
    assert len([line for line in lines if "recovered" in line]) == 1
    pipeline.process()
    health = [m["text"] for m in slack.posted() if "Source acme/ios" in m["text"]]
    assert len(health) == 2 and "is failing (rate_limited)" in health[0] and "recovered" in health[1]


def test_retry_after_is_honoured(tmp_path, store_feed, slack):
    pipeline, store, clock = pipeline_for(tmp_path, store_feed, slack)
    store_feed.fail(Reply(429, b"", {"Retry-After": "600"}))
    assert pipeline.poll("acme/ios").failure.kind is FailureKind.RATE_LIMITED
    clock[0] += timedelta(seconds=300)
    assert pipeline.poll("acme/ios").deferred_until == NOW + timedelta(seconds=600)
    assert len(store_feed.requests) == 1
    clock[0] += timedelta(seconds=301)
    assert pipeline.poll("acme/ios").failure is None
    assert len(store_feed.requests) == 2
