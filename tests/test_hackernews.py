"""The Hacker News connector against the Algolia search emulator, through real requests, and the pipeline."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from connectors.hackernews import HackerNewsConnector, default_queries, hit_to_post
from emulators.hackernews import PAGINATION_ERROR, HackerNewsEmulator, comment, story
from emulators.server import Reply
from monitor.config import Settings
from monitor.core.failures import FailureKind, SourceFailure
from monitor.store import Store
from tests.support.config import config_dict, pipeline_with_clock

DATA = Path(__file__).parent / "data" / "hackernews"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T0 = int(NOW.timestamp())


def sample(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def stories(count: int, first_id: int, newest: int, step: int = 1) -> list[dict]:
    """`count` stories about Acme, `step` seconds apart, ids counting up with time."""
    return [story(first_id + i, f"Acme Cloud note {first_id + i}", newest - (count - 1 - i) * step, points=i)
            for i in range(count)]


@pytest.fixture
def hn():
    with HackerNewsEmulator() as emulator:
        yield emulator


def source_dict(**extra) -> dict:
    return {"type": "hackernews", "name": "hn", "interval": "1s", **extra}


def connector(emulator: HackerNewsEmulator, source: dict | None = None, team: list[str] | None = None,
              **platform) -> HackerNewsConnector:
    settings = Settings(slack={"token": "xoxb-x"},
                        hackernews={"base_url": emulator.api_url, "connect_timeout": 1, "read_timeout": 1, **platform},
                        brands={"acme": {"names": ["Acme Cloud", "AcmeCloud"], "aliases": ["Acme"],
                                         "domains": ["acme.io"], "slack_channel": "#a",
                                         "team": {"hackernews": team or []}, "sources": [source or source_dict()]}})
    return HackerNewsConnector(settings.brands["acme"].sources[0], settings, clock=lambda: NOW)


def ids(posts) -> list[str]:
    return [p.external_id for p in posts]


# --- the wire format ---------------------------------------------------------------------------

def test_sample_hits_become_posts():
    hits = sample("search_by_date_page0.json")["response"]["hits"]
    reply, launch, ask = (hit_to_post(h, frozenset()) for h in hits)
    assert reply.url == "https://news.ycombinator.com/item?id=45100007"
    assert reply.title is None  # a comment is classified on its own words
    assert reply.extra["story_title"] == "Ask HN: Which hosting providers have honest status pages?"
    assert reply.text == ('We moved off Acme Cloud last year. Their status page said "all green" for the whole outage '
                          "& support didn't answer for two days. See https://status.acme.io/incidents/42")
    assert reply.reach is None and reply.thread_id == "45100001" and reply.parent_id == "45100001"
    assert reply.extra == {"points": None, "num_comments": None, "story_id": 45100001, "parent_id": 45100001,
                           "kind": "comment", "link": None,
                           "story_title": "Ask HN: Which hosting providers have honest status pages?"}
    assert reply.created_at == datetime(2026, 11, 26, 11, 58, 20, tzinfo=timezone.utc)
    assert launch.reach == 57 and launch.extra["num_comments"] == 2 and launch.extra["kind"] == "story"
    assert launch.text == "https://github.com/acme-cloud/edge-runtime"  # link stories: the link is the text
    assert launch.parent_id is None and launch.author == "acmecloud_dev"
    assert ask.text == "Is anyone running Postgres on Acme? The pricing page doesn't say whether backups are included."


def test_emulator_answers_in_the_sample_shape(hn):
    recorded = sample("search_by_date_page0.json")["response"]
    hn.add(story(1, "Acme launch", T0, url="https://acme.io"), comment(2, "Acme <p>rocks", T0 + 1, 1, "Acme launch"))
    got = connector(hn).fetch(None)
    assert len(got.posts) == 2
    served = requests.get(hn.api_url + "/search_by_date", params={"query": "acme", "hitsPerPage": 3}, timeout=5).json()
    assert set(recorded) <= set(served) | {"processingTimingsMS"}
    story_keys = next(set(h) for h in recorded["hits"] if "story" in h["_tags"])
    comment_keys = next(set(h) for h in recorded["hits"] if "comment" in h["_tags"])
    assert {frozenset(h) for h in served["hits"]} == {frozenset(story_keys), frozenset(comment_keys)}
    assert served["hits"][0]["objectID"] == "2" and served["hits"][1]["points"] is not None


def test_emulator_refuses_pages_past_the_1000_hit_window_like_algolia(hn):
    resp = requests.get(hn.api_url + "/search_by_date", params={"page": 10, "hitsPerPage": 100}, timeout=5)
    assert resp.status_code == sample("error_pagination_limit.json")["status"]
    assert resp.json()["message"] == sample("error_pagination_limit.json")["response"]["message"] == PAGINATION_ERROR


def test_queries_default_to_the_fewest_that_cover_the_brand_terms(hn):
    assert default_queries(["Acme Cloud", "AcmeCloud", "Acme", "acme.io"]) == ["AcmeCloud", "Acme"]
    assert connector(hn).queries == ["AcmeCloud", "Acme"]
    assert connector(hn, source_dict(queries=["acme cloud", "acme cloud"])).queries == ["acme cloud"]


# --- new items, cursors, paging -------------------------------------------------------------------

def test_first_poll_then_only_new_items_with_a_created_at_filter(hn):
    hn.add(*stories(3, 100, T0))
    conn = connector(hn)
    first = conn.fetch(None)
    assert ids(first.posts) == ["100", "101", "102"]  # oldest first
    # The first poll reads first_poll_lookback (24 h) of history, no more.
    assert hn.searches()[0]["numericFilters"] == f"created_at_i>={T0 - 86400}"
    assert hn.searches()[0]["tags"] == "(story,comment)"
    hn.add(story(200, "Acme Cloud again", T0 + 60), comment(201, "I like <b>AcmeCloud</b>", T0 + 61, 200, "x"))
    second = conn.fetch(first.cursor)
    assert ids(second.posts) == ["200", "201"]
    filters = {s["query"]: s["numericFilters"] for s in hn.searches()[-2:]}
    # `Acme` starts where its first poll's oldest item was; `AcmeCloud` found nothing then, so
    # it starts at that time less the late-indexing allowance (10 minutes).
    assert filters == {"Acme": f"created_at_i>={T0 - 2}", "AcmeCloud": f"created_at_i>={T0 - 600}"}
    assert conn.fetch(second.cursor).posts == []


def test_items_at_the_cursor_second_are_neither_lost_nor_repeated(hn):
    hn.add(story(1, "Acme one", T0), story(2, "Acme two", T0))
    conn = connector(hn)
    cursor = conn.fetch(None).cursor
    hn.add(story(3, "Acme three", T0))  # same second, indexed after the poll
    second = conn.fetch(cursor)
    assert ids(second.posts) == ["3"]
    assert conn.fetch(second.cursor).posts == []


def test_item_indexed_late_with_an_older_timestamp_is_picked_up(hn):
    hn.add(*stories(2, 10, T0, step=300))
    conn = connector(hn)
    cursor = conn.fetch(None).cursor
    hn.add(story(115, "Acme late", T0 - 120))  # posted 2 minutes before the newest, indexed now
    assert ids(conn.fetch(cursor).posts) == ["115"]


def test_new_items_are_read_across_pages(hn):
    hn.add(*stories(5, 1, T0 - 3600))
    conn = connector(hn, hits_per_page=20)
    cursor = conn.fetch(None).cursor
    hn.add(*stories(55, 1000, T0))
    second = conn.fetch(cursor)
    assert ids(second.posts) == [str(i) for i in range(1000, 1055)]
    assert [s["page"] for s in hn.searches()[-3:]] == ["0", "1", "2"]


def test_items_pushed_onto_the_next_page_while_paging_are_returned_once(hn):
    hn.add(*stories(2, 1, T0 - 3600))
    conn = connector(hn, hits_per_page=10)
    cursor = conn.fetch(None).cursor
    hn.add(*stories(25, 100, T0))
    hn.arrive_before_page(1, *stories(3, 500, T0 + 30))  # pushes 3 items of page 0 onto page 1
    second = conn.fetch(cursor)
    assert ids(second.posts) == [str(i) for i in range(100, 125)]
    assert ids(conn.fetch(second.cursor).posts) == ["500", "501", "502"]  # they came after page 0: next poll


def test_a_poll_over_its_page_budget_leaves_a_backlog_read_next_time(hn):
    hn.add(*stories(3, 1, T0 - 7200))
    # A short late window: re-reading the last minutes each poll must not eat this tiny page budget.
    conn = connector(hn, hits_per_page=10, max_pages=2, late_window="1m")
    cursor = conn.fetch(None).cursor
    hn.add(*stories(45, 100, T0, step=30))
    seen: list[str] = []
    for _ in range(3):
        result = conn.fetch(cursor)
        cursor = result.cursor
        seen += ids(result.posts)
    assert sorted(seen, key=int) == [str(i) for i in range(100, 145)] and len(seen) == 45
    assert any("created_at_i<=" in s.get("numericFilters", "") for s in hn.searches())
    assert "backlog" not in cursor["queries"]["Acme"]
    hn.add(story(900, "Acme newer", T0 + 10))
    assert ids(conn.fetch(cursor).posts) == ["900"]


def test_more_than_algolias_1000_hit_window_is_read_by_narrowing_the_window(hn):
    hn.add(story(1, "Acme first", T0 - 86400))
    conn = connector(hn, hits_per_page=100, max_pages=20)
    cursor = conn.fetch(None).cursor
    hn.add(*stories(1150, 10_000, T0, step=20))
    first = conn.fetch(cursor)
    assert len(first.posts) == 1000
    second = conn.fetch(first.cursor)
    assert len(second.posts) == 150
    assert sorted(ids(first.posts) + ids(second.posts), key=int) == [str(i) for i in range(10_000, 11_150)]


def test_an_item_matching_two_queries_is_returned_once(hn):
    hn.add(story(7, "AcmeCloud vs Acme", T0))
    result = connector(hn).fetch(None)
    assert ids(result.posts) == ["7"]
    assert {s["query"] for s in hn.searches()} == {"AcmeCloud", "Acme"}


def test_team_accounts_are_marked_and_stories_only_can_be_asked_for(hn):
    hn.add(story(1, "Acme Cloud 5.0 is out", T0, author="AcmeStaff"), comment(2, "acme rocks", T0, 1, "x", author="x"))
    posts = connector(hn, source_dict(comments=False), team=["acmestaff"]).fetch(None).posts
    assert ids(posts) == ["1"] and posts[0].extra["by_team"] is True
    assert {s["tags"] for s in hn.searches()} == {"story"}


# --- failures -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, kind, retry_after", [
    (Reply.json({"message": "too many requests"}, 429, {"Retry-After": "90"}), FailureKind.RATE_LIMITED, 90),
    (Reply(503, b"busy", {"Retry-After": "30"}), FailureKind.RATE_LIMITED, 30),
    (Reply(500, b"oops"), FailureKind.UNAVAILABLE, None),
    (Reply(502, b"<html>bad gateway</html>"), FailureKind.UNAVAILABLE, None),
    (Reply.json({"message": PAGINATION_ERROR, "status": 400}, 400), FailureKind.UNAVAILABLE, None),
    (Reply.json({"message": "Not Found", "status": 404}, 404), FailureKind.GONE, None),
    (Reply(200, b"<html>captive portal</html>", {"Content-Type": "text/html"}), FailureKind.BAD_PAYLOAD, None),
    (Reply.json({"hits": "none"}), FailureKind.BAD_PAYLOAD, None),
    (Reply.json({"hits": [], "page": 0}), FailureKind.BAD_PAYLOAD, None),
    (Reply(drop=True), FailureKind.UNAVAILABLE, None),
])
def test_failures_are_classified(hn, reply, kind, retry_after):
    hn.fail(reply)
    with pytest.raises(SourceFailure) as info:
        connector(hn).fetch(None)
    assert info.value.kind is kind and info.value.retry_after == retry_after
    assert "Hacker News search" in info.value.message


def test_stalled_search_times_out_quickly(hn):
    hn.fail(Reply(stall=30))
    started = time.monotonic()
    with pytest.raises(SourceFailure) as info:
        connector(hn).fetch(None)
    assert info.value.kind is FailureKind.UNAVAILABLE and "timed out" in info.value.message
    assert time.monotonic() - started < 20  # cut off by the 1 s read timeout, long before the 30 s stall ends


def test_hits_without_ids_are_skipped_with_one_warning(hn):
    hn.add(story(1, "Acme ok", T0))
    good = {"hits": [{"title": "Acme broken", "created_at_i": T0}, story(1, "Acme ok", T0)],
            "nbHits": 2, "page": 0, "nbPages": 1, "hitsPerPage": 100}
    hn.fail(Reply.json(good), times=4)
    conn = connector(hn)
    first = conn.fetch(None)
    assert ids(first.posts) == ["1"] and len(first.warnings) == 1
    assert conn.fetch(first.cursor).warnings == []


# --- through the pipeline ---------------------------------------------------------------------------

def pipeline_for(tmp_path, emulator, slack, **platform):
    config = config_dict(tmp_path, slack.api_url, [source_dict()],
                         hackernews={"base_url": emulator.api_url, "connect_timeout": "1s", "read_timeout": "1s",
                                     **platform})
    return pipeline_with_clock(tmp_path, config, NOW)


def stored_ids(store: Store) -> list[str]:
    return [row["external_id"] for row in store.export_rows(None)]


def test_pipeline_stores_brand_mentions_and_drops_excluded_ones(tmp_path, hn, slack):
    hn.add(story(1, "Acme Cloud outage: support is terrible and ignores every ticket", T0, points=40, num_comments=12),
           story(2, "The Acme anvil in cartoons", T0 + 1))
    pipeline, store, _ = pipeline_for(tmp_path, hn, slack)
    outcome = pipeline.poll("acme/hn")
    assert outcome.failure is None and outcome.dropped == {"excluded": 1}
    assert stored_ids(store) == ["1"]
    pipeline.process()
    [message] = slack.posted("#acme-alerts")
    assert "news.ycombinator.com/item?id=1" in message["blocks"][1]["text"]["text"]
    assert "reach 40" in message["blocks"][3]["elements"][0]["text"]


def test_restart_resumes_from_the_stored_cursor(tmp_path, hn, slack):
    hn.add(*stories(3, 1, T0))
    pipeline, store, _ = pipeline_for(tmp_path, hn, slack)
    pipeline.poll("acme/hn")
    store.close()
    hn.add(story(50, "Acme Cloud later", T0 + 300))
    pipeline, store, _ = pipeline_for(tmp_path, hn, slack)  # a new process
    outcome = pipeline.poll("acme/hn")
    assert len(outcome.new_ids) == 1 and stored_ids(store) == ["1", "2", "3", "50"]
    assert hn.searches()[-1]["numericFilters"].startswith("created_at_i>=")


def test_duplicates_across_pages_are_stored_once(tmp_path, hn, slack):
    hn.add(*stories(2, 1, T0 - 3600))
    pipeline, store, _ = pipeline_for(tmp_path, hn, slack, hits_per_page=10)
    pipeline.poll("acme/hn")
    hn.add(*stories(25, 100, T0))
    hn.arrive_before_page(1, *stories(4, 500, T0 + 30))
    outcome = pipeline.poll("acme/hn")
    assert len(outcome.new_ids) == outcome.fetched == 25
    pipeline.poll("acme/hn")
    ids_ = stored_ids(store)
    assert len(ids_) == len(set(ids_)) == 2 + 25 + 4


def test_failure_table_logs_one_line_per_state_change(tmp_path, hn, slack, caplog):
    hn.add(*stories(2, 1, T0))
    pipeline, store, clock = pipeline_for(tmp_path, hn, slack)
    script = [Reply(429, b"", {"Retry-After": "60"}), Reply(500, b"oops"), Reply(502, b"x"), Reply(stall=5),
              Reply(200, b"{not json"), Reply.json({"message": "Not Found", "status": 404}, 404)]
    caplog.set_level(logging.INFO, logger="mentionwatch")
    for reply in script:
        hn.fail(reply)
        assert pipeline.poll("acme/hn").failure is not None
        clock[0] += timedelta(hours=2)
    assert pipeline.poll("acme/hn").failure is None
    lines = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.monitor.pipeline" and r.levelno >= logging.INFO]
    failing = [line.split("(")[1].split(")")[0] for line in lines if "is failing" in line]
    assert failing == ["rate_limited", "unavailable", "bad_payload", "gone"]
    assert len([line for line in lines if "recovered" in line]) == 1
    pipeline.process()
    health = [m["text"] for m in slack.posted() if "Source acme/hn" in m["text"]]
    assert len(health) == 2 and "recovered" in health[1]


def test_retry_after_is_honoured(tmp_path, hn, slack):
    pipeline, store, clock = pipeline_for(tmp_path, hn, slack)
    hn.fail(Reply(429, b"", {"Retry-After": "600"}))
    assert pipeline.poll("acme/hn").failure.kind is FailureKind.RATE_LIMITED
    clock[0] += timedelta(seconds=300)
    assert pipeline.poll("acme/hn").deferred_until == NOW + timedelta(seconds=600)
    assert len(hn.requests) == 1
    clock[0] += timedelta(seconds=301)
    assert pipeline.poll("acme/hn").failure is None
    assert len(hn.requests) == 2
