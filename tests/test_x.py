"""The X connector: real tweepy `Client` against the X emulator, alone and through the pipeline."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.x.config import reads_per_month
from connectors.x.connector import XConnector
from connectors.x.posts import default_query, next_period, snowflake_time
from emulators.server import Reply, wait_until
from emulators.x import CLIENT_NOT_ENROLLED, UNAUTHORIZED, XEmulator, rate_limited
from monitor import cli
from monitor.config import ConfigError, Settings, load_settings
from monitor.daemon import build_pipeline
from monitor.core.failures import FailureKind, SourceFailure
from monitor.store import Store
from tests.support.config import SHARED_FIXTURES, config_dict, write_config

BEARER = "x-bearer-SECRET-5d8e1f"
FIXTURES = SHARED_FIXTURES / "twitter"
MENTIONWATCH = str(Path(sys.executable).with_name("mentionwatch"))
COMPLAINT = "Acme Cloud charged me twice and support ignores my ticket, awful ({n})"


@pytest.fixture
def xapi():
    with XEmulator(bearer_token=BEARER) as emulator:
        emulator.add_user("acmecloud", "Acme Cloud", 52_000, user_id="783214")
        emulator.add_user("acme_support", "Acme Support", 900)
        emulator.add_user("alice", "Alice Ng", 1_234)
        emulator.add_user("bob", "Bob", 56)
        yield emulator


def x_source(**extra) -> dict:
    return {"type": "x", "name": "x", "interval": "1s", **extra}


def x_platform(xapi: XEmulator, **extra) -> dict:
    return {"bearer_token": BEARER, "base_url": xapi.url, "connect_timeout": "1s", "read_timeout": "1s",
            "max_results": 10, **extra}


def settings_for(xapi: XEmulator, source: dict | None = None, **platform) -> Settings:
    return Settings(slack={"token": "xoxb-x"}, x=x_platform(xapi, **platform),
                    brands={"acme": {"names": ["Acme Cloud"], "handles": ["@acmecloud"], "exclude": ["acme anvil"],
                                     "team": {"x": ["@acme_support"]}, "slack_channel": "#a",
                                     "sources": [source or x_source()]}})


def connector(xapi: XEmulator, source: dict | None = None, store=None, **platform) -> XConnector:
    settings = settings_for(xapi, source, **platform)
    return XConnector(settings.brands["acme"].sources[0], settings, store)


def pipeline_for(tmp_path, xapi, slack, source: dict | None = None, clock=None, **platform):
    """The real pipeline with one X source; `clock` (a one-item list) drives pipeline, connector and X."""
    data = config_dict(tmp_path, slack.api_url, [source or x_source()], x=x_platform(xapi, **platform))
    data["brands"]["acme"]["team"] = {"x": ["@acme_support"]}
    settings, _ = load_settings(write_config(tmp_path, data))
    store = Store(settings.storage.url)
    pipeline = build_pipeline(settings, store)
    conn = pipeline._connectors["acme/x"]
    if clock is not None:
        pipeline.clock = conn.clock = xapi.clock = lambda: clock[0]
    return pipeline, store, conn


def publish(xapi: XEmulator, count: int, start: int = 0, user: str = "alice", at: datetime | None = None) -> list[str]:
    """`count` complaints one second apart, oldest first; returns their ids."""
    base = at or xapi.clock() - timedelta(seconds=count + 5)
    return [xapi.post(user, COMPLAINT.format(n=start + i), at=base + timedelta(seconds=i)) for i in range(count)]


def stored(store: Store) -> list[str]:
    return [row["external_id"] for row in store.export_rows(None)]


# --- what it reads and what a mention keeps ------------------------------------------------------

def test_mentions_keep_author_reach_conversation_reply_and_link_and_are_stored_once(tmp_path, xapi, slack):
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack)
    root = xapi.post("bob", "Thinking about moving our shop to Acme Cloud, any experiences?")
    reply = xapi.post("alice", "@bob @acmecloud we did, support is slow & billing is confusing", reply_to=root)
    retweet = xapi.post("bob", "", retweet_of=reply)
    xapi.post("bob", "Acme anvil collectors unite")  # an exclusion phrase: not about the brand
    outcome = pipeline.poll("acme/x")
    assert outcome.failure is None
    rows = {row["external_id"]: row for row in store.export_rows(None)}
    assert set(rows) == {root, reply}, "the retweet is the tweet it retweets; the reply is in search and mentions"
    assert len(outcome.new_ids) == 2
    row = rows[reply]
    assert row["author"] == "@alice" and row["url"] == f"https://x.com/alice/status/{reply}"
    assert row["text"] == "@bob @acmecloud we did, support is slow & billing is confusing"
    assert abs((row["created_at"] - snowflake_time(reply)).total_seconds()) < 1
    with sqlite3.connect(tmp_path / "mw.db") as db:
        thread, parent, reach, extra = db.execute(
            "SELECT thread_id, parent_id, reach, extra FROM mentions WHERE external_id = ?", (reply,)).fetchone()
    assert (thread, parent, reach) == (root, root, 1_234)
    assert '"author_name": "Alice Ng"' in extra and '"in_reply_to_user_id"' in extra
    assert retweet not in rows
    search = xapi.queries("search")[0]
    assert search["query"] == default_query(pipeline.settings.brands["acme"])
    assert search["query"] == '("Acme Cloud" OR Acme OR @acmecloud OR url:"acme.io") -"acme anvil" -is:retweet'
    assert xapi.hits("users") == 1 and xapi.hits("mentions") == 1
    pipeline.poll("acme/x")
    assert xapi.hits("users") == 1, "handle ids are resolved once and kept in the cursor"
    assert xapi.queries("mentions")[-1]["since_id"] == retweet, "the timeline resumes after its newest tweet"


def test_a_verbatim_query_is_sent_as_written(xapi):
    query = '("acme cloud" OR acmecloud) lang:en -is:retweet -from:acmecloud'
    xapi.post("alice", "acme cloud is down for me")
    xapi.post("alice", "acme cloud est en panne", lang="fr")
    result = connector(xapi, x_source(query=query, mentions=False)).fetch(None)
    assert [p.text for p in result.posts] == ["acme cloud is down for me"]
    assert xapi.queries("search")[0]["query"] == query
    assert xapi.hits("mentions") == 0


def test_recorded_fixture_pages_are_read(xapi):
    conn = connector(xapi, x_source(mentions=False))
    xapi.replay("search", FIXTURES / "test_client_search_recent_tweets.responses.json")
    recorded = conn.fetch(None)
    assert len(recorded.posts) == 10 and recorded.posts[0].external_id == "1578516068309794817"
    assert recorded.cursor["streams"]["search"]["since_id"] == "1578516068309794817"
    assert recorded.posts[0].url == "https://x.com/i/web/status/1578516068309794817"
    assert conn.session.limits["search"].limit == 450

    xapi.replay("search", FIXTURES / "twarc-csv_withheld_line4_timeline_page.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pre-2022 tweets lack edit_history_tweet_ids: no warning per tweet
        page = connector(xapi, x_source(mentions=False)).fetch(None)
    assert len(page.posts) == 100
    assert all(p.author for p in page.posts)
    assert all(p.reach is not None for p in page.posts if "retweeted_by" not in p.extra)
    assert not any("&amp;" in p.text for p in page.posts) and sum("&" in p.text for p in page.posts) >= 11

    xapi.replay("mentions", FIXTURES / "test_client_get_users_mentions.responses.json")
    mentions = connector(xapi, x_source(search=False)).fetch(None)
    assert len(mentions.posts) == 10 and mentions.posts[1].text.startswith("Good @WilliamCohan")


# --- pages and cursors -----------------------------------------------------------------------------

def test_a_multi_page_poll_keeps_the_first_pages_newest_id(xapi):
    conn = connector(xapi, x_source(mentions=False), max_pages=10)
    cursor = conn.fetch(None).cursor  # the first poll finds nothing yet
    ids = publish(xapi, 35)
    result = conn.fetch(cursor)
    assert sorted(p.external_id for p in result.posts) == sorted(ids)
    assert result.cursor["streams"]["search"]["since_id"] == ids[-1]
    pages = xapi.queries()[1:]
    assert [bool(q.get("next_token")) for q in pages] == [False, True, True, True]
    assert len({q["start_time"] for q in pages}) == 1
    assert conn.fetch(result.cursor).posts == [] and xapi.queries()[-1]["since_id"] == ids[-1]


def test_the_page_bound_continues_next_poll_without_losing_or_rereading(tmp_path, xapi, slack):
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False), max_pages=2)
    pipeline.poll("acme/x")
    first = publish(xapi, 45)
    pipeline.poll("acme/x")
    assert len(stored(store)) == 20
    later = publish(xapi, 7, start=100, at=xapi.clock())  # arrive while the walk is unfinished
    for _ in range(4):
        pipeline.poll("acme/x")
    assert sorted(stored(store)) == sorted(first + later)
    assert xapi.served == len(first) + len(later), "no post was read twice"
    assert store.get_cursor("acme/x")["streams"]["search"] == {
        "query": pipeline._connectors["acme/x"].query, "started": True, "since_id": later[-1]}


def test_a_failure_between_pages_stores_nothing_then_everything_once(tmp_path, xapi, slack):
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False), max_pages=10)
    pipeline.poll("acme/x")
    cursor = store.get_cursor("acme/x")
    ids = publish(xapi, 35)
    xapi.fail("search", Reply(503, b"<html>over capacity</html>", {"Content-Type": "text/html"}), after=2)
    assert pipeline.poll("acme/x").failure.kind is FailureKind.UNAVAILABLE
    assert stored(store) == [] and store.get_cursor("acme/x") == cursor
    outcome = pipeline.poll("acme/x")
    assert outcome.failure is None and len(outcome.new_ids) == 35
    assert sorted(stored(store)) == sorted(ids)
    assert store.get_cursor("acme/x")["streams"]["search"]["since_id"] == ids[-1]


@pytest.mark.slow  # the real daemon, as a subprocess
def test_sigkill_during_a_stalled_page_loses_and_duplicates_nothing(tmp_path, xapi, slack):
    data = config_dict(tmp_path, slack.api_url, [x_source(mentions=False)],
                       x=x_platform(xapi, read_timeout="20s", initial_pages=10))
    config = write_config(tmp_path, data)
    ids = publish(xapi, 35)
    xapi.fail("search", Reply(stall=30), after=1)
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    proc = subprocess.Popen([MENTIONWATCH, "run", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: xapi.hits("search") >= 2, timeout=30), "the daemon never reached page 2"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(tmp_path / "mw.db") as db:
        assert db.execute("SELECT count(*) FROM mentions").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM cursors").fetchone()[0] == 0
    for _ in range(2):
        done = subprocess.run([MENTIONWATCH, "run", "--once", "--log-level", "DEBUG", "--config", str(config)],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert BEARER not in done.stderr + done.stdout
    with sqlite3.connect(tmp_path / "mw.db") as db:
        rows = [r[0] for r in db.execute("SELECT external_id FROM mentions")]
    assert sorted(rows) == sorted(ids)
    alert_ids = [m["metadata"]["event_payload"]["alert_id"] for m in slack.posted()]
    assert len(alert_ids) == 35 and not [a for a, n in Counter(alert_ids).items() if n > 1]


def test_a_since_id_older_than_the_search_window_is_recorded_as_a_gap(tmp_path, xapi, slack):
    pipeline, store, conn = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False))
    stale = str(((int((xapi.clock() - timedelta(days=9)).timestamp() * 1000) - 1288834974657) << 22))
    store.commit_poll("acme/x", [], {"users": {}, "streams": {"search": {
        "query": conn.query, "started": True, "since_id": stale}}}, Counter(), xapi.clock())
    ids = publish(xapi, 3)
    outcome = pipeline.poll("acme/x")
    assert outcome.failure is None, outcome.failure
    assert sorted(stored(store)) == sorted(ids)
    assert "start_time" in xapi.queries()[-1] and "since_id" not in xapi.queries()[-1]
    gaps = store.gaps("acme/x")
    assert len(gaps) == 1 and "7-day" in gaps[0]["reason"]
    assert abs((gaps[0]["window_start"] - snowflake_time(stale)).total_seconds()) < 1
    pipeline.poll("acme/x")
    assert len(store.gaps("acme/x")) == 1, "the gap is recorded once"
    status = CliRunner().invoke(cli.app, ["status", "--config", str(tmp_path / "config.yaml")], terminal_width=200)
    assert "Coverage gaps" in status.output and "acme/x" in status.output


def test_first_poll_reads_only_the_initial_pages_and_records_the_rest_as_a_gap(xapi):
    publish(xapi, 25)
    result = connector(xapi, x_source(mentions=False)).fetch(None)
    assert len(result.posts) == 10 and xapi.hits("search") == 1
    assert len(result.gaps) == 1 and "first poll" in result.gaps[0].reason


# --- failures --------------------------------------------------------------------------------------

FAILURES = [
    ("stall", Reply(stall=30), FailureKind.UNAVAILABLE, "timed out"),
    ("dropped connection", Reply(drop=True), FailureKind.UNAVAILABLE, "connection failed"),
    ("500", Reply.json({"title": "Internal Server Error"}, 500), FailureKind.UNAVAILABLE, "HTTP 500"),
    ("503 html", Reply(503, b"<html>Over capacity</html>", {"Content-Type": "text/html"}), FailureKind.UNAVAILABLE,
     "HTTP 503"),
    ("401", Reply.json(UNAUTHORIZED, 401), FailureKind.AUTH, "bearer token"),
    ("403 not enrolled", Reply.json(CLIENT_NOT_ENROLLED, 403), FailureKind.AUTH, "Basic plan"),
    ("not json", Reply(200, b"<html>login</html>", {"Content-Type": "text/html"}), FailureKind.BAD_PAYLOAD, "JSON"),
]


@pytest.mark.parametrize("name, reply, kind, words", FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_are_classified(xapi, name, reply, kind, words):
    conn = connector(xapi, x_source(mentions=False))
    xapi.fail("search", reply)
    started = time.monotonic()
    with pytest.raises(SourceFailure) as info:
        conn.fetch(None)
    assert info.value.kind is kind and words in info.value.message
    assert time.monotonic() - started < 20  # a stall is cut off by the 1 s read timeout, long before it ends
    assert BEARER not in info.value.message


@pytest.mark.parametrize("reply", [Reply.json(UNAUTHORIZED, 401), Reply.json(CLIENT_NOT_ENROLLED, 403)])
def test_auth_failures_disable_the_source_with_one_clear_message(xapi, reply):
    conn = connector(xapi, x_source(mentions=False))
    xapi.fail("search", reply)
    with pytest.raises(SourceFailure) as first:
        conn.fetch(None)
    with pytest.raises(SourceFailure) as second:
        conn.fetch(None)
    assert second.value.message == first.value.message and xapi.hits("search") == 1, "disabled: X is not asked again"
    assert "disabled" in first.value.message


def test_an_invalid_query_is_a_config_error_naming_brand_and_query(xapi):
    with pytest.raises(SourceFailure) as info:
        connector(xapi, x_source(query="(acme cloud", mentions=False)).fetch(None)
    assert info.value.kind is FailureKind.GONE
    assert "brand acme" in info.value.message and "'(acme cloud'" in info.value.message
    assert "brands.acme.sources (x).query" in info.value.message


def test_an_unknown_handle_names_the_brand_setting(xapi):
    settings = Settings(slack={"token": "xoxb-x"}, x=x_platform(xapi),
                        brands={"acme": {"names": ["Acme"], "handles": ["@nosuchacme"], "slack_channel": "#a",
                                         "sources": [x_source(search=False)]}})
    with pytest.raises(SourceFailure) as info:
        XConnector(settings.brands["acme"].sources[0], settings).fetch(None)
    assert info.value.kind is FailureKind.GONE and "brands.acme.handles" in info.value.message


def test_a_429_reschedules_at_the_reset_and_not_before(tmp_path, xapi, slack, caplog):
    clock = [datetime.now(timezone.utc).replace(microsecond=0)]
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False), clock=clock)
    reset = clock[0].timestamp() + 600
    xapi.fail("search", rate_limited(reset))
    caplog.set_level(logging.INFO, logger="mentionwatch")
    failed = pipeline.poll("acme/x")
    assert failed.failure.kind is FailureKind.RATE_LIMITED and failed.failure.retry_after == 600
    clock[0] += timedelta(seconds=300)
    assert pipeline.poll("acme/x").deferred_until == clock[0] + timedelta(seconds=300)
    assert xapi.hits("search") == 1
    clock[0] += timedelta(seconds=301)
    assert pipeline.poll("acme/x").failure is None and xapi.hits("search") == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.monitor.pipeline"]
    assert sum("is failing (rate_limited)" in line for line in lines) == 1
    assert sum("recovered" in line for line in lines) == 1


def test_pacing_on_remaining_never_calls_an_exhausted_endpoint(xapi):
    conn = connector(xapi)
    xapi.set_rate_limit("search", remaining=1, reset_in=900)
    first = conn.fetch(None)   # the search answers with remaining 0
    mentions_before = xapi.hits("mentions")
    result = conn.fetch(first.cursor)
    assert xapi.hits("search") == 1, "no call while the window is used up"
    assert xapi.hits("mentions") == mentions_before + 1, "the mentions timeline has its own window"
    assert result.cursor["streams"]["search"] == first.cursor["streams"]["search"]
    search_only = connector(xapi, x_source(mentions=False))
    search_only.session.limits.update(conn.session.limits)
    with pytest.raises(SourceFailure) as info:
        search_only.fetch(None)
    assert info.value.kind is FailureKind.RATE_LIMITED and 880 < info.value.retry_after <= 900
    assert xapi.hits("search") == 1


def test_failures_log_once_on_break_and_once_on_recovery_with_two_slack_messages(tmp_path, xapi, slack, caplog):
    clock = [datetime.now(timezone.utc)]
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False), clock=clock)
    xapi.fail("search", Reply(503, b"busy"), times=4)
    caplog.set_level(logging.INFO, logger="mentionwatch")
    for _ in range(4):
        assert pipeline.poll("acme/x").failure is not None
        clock[0] += timedelta(hours=2)
    assert pipeline.poll("acme/x").failure is None
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("mentionwatch")]
    assert sum("is failing" in line for line in lines) == 1 and sum("recovered" in line for line in lines) == 1
    pipeline.process()
    health = [m["text"] for m in slack.posted() if "Source acme/x" in m["text"]]
    assert len(health) == 2 and "HTTP 503" in health[0] and "recovered" in health[1]


# --- read budget -----------------------------------------------------------------------------------

def test_the_read_budget_pauses_until_next_month_and_resumes_where_it_stopped(tmp_path, xapi, slack, caplog):
    clock = [datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)]
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False), clock=clock,
                                      monthly_read_cap=35, max_pages=10)
    caplog.set_level(logging.INFO, logger="mentionwatch")
    pipeline.poll("acme/x")
    ids = publish(xapi, 60, at=clock[0] + timedelta(seconds=1))
    clock[0] += timedelta(minutes=2)
    assert pipeline.poll("acme/x").failure is None
    assert len(stored(store)) == 30 and store.get_usage("x:reads:default", "2026-11") == 30
    clock[0] += timedelta(minutes=1)
    paused = pipeline.poll("acme/x")
    assert paused.failure.kind is FailureKind.RATE_LIMITED and "budget exhausted" in paused.failure.message
    assert paused.deferred_until == datetime(2026, 12, 1, tzinfo=timezone.utc)
    clock[0] += timedelta(minutes=30)
    assert pipeline.poll("acme/x").deferred_until is not None
    assert xapi.hits("search") == 4
    clock[0] = datetime(2026, 12, 1, 0, 1, tzinfo=timezone.utc)
    assert pipeline.poll("acme/x").failure is None
    assert sorted(stored(store)) == sorted(ids) and xapi.served == 60
    assert store.get_usage("x:reads:default", "2026-11") == 30 and store.get_usage("x:reads:default", "2026-12") == 30
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("mentionwatch")]
    assert sum("budget exhausted" in line for line in lines) == 1 and sum("recovered" in line for line in lines) == 1
    pipeline.process()
    health = [m["text"] for m in slack.posted() if "Source acme/x" in m["text"]]
    assert len(health) == 2 and "budget exhausted" in health[0] and "recovered" in health[1]


def test_validate_estimates_monthly_reads_and_names_an_x_source_without_credentials(tmp_path, xapi, slack):
    data = config_dict(tmp_path, slack.api_url, [x_source(expected_posts_per_day=200)],
                       x=x_platform(xapi, monthly_read_cap=10_000))
    settings, warnings_ = load_settings(write_config(tmp_path, data))
    assert reads_per_month(settings) == 2 * 200 * 30  # the search and @acmecloud's mentions
    assert [w.path for w in warnings_] == ["x.monthly_read_cap"] and "12,000" in warnings_[0].expected
    data["x"]["monthly_read_cap"] = 15_000
    assert load_settings(write_config(tmp_path, data))[1] == []
    del data["x"]
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, data))
    assert "X source acme/x needs a top-level `x:` section with bearer_token" in str(info.value)


def test_next_period_is_the_first_of_next_month():
    assert next_period(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)) == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert next_period(datetime(2026, 2, 3, tzinfo=timezone.utc)) == datetime(2026, 3, 1, tzinfo=timezone.utc)


# --- the team, and what reaches Slack ----------------------------------------------------------

def test_team_replies_are_found_and_recorded_and_team_tweets_never_alert(tmp_path, xapi, slack):
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack)
    question = xapi.post("alice", "@acmecloud my deploys fail with quota errors, can you help? Acme Cloud is broken")
    unanswered = xapi.post("bob", "Acme Cloud billing charged me twice, terrible, can anyone help?")
    xapi.post("acmecloud", "Acme Cloud maintenance tonight: sorry, dashboards will be slow and broken")
    pipeline.poll("acme/x")
    pipeline.process()
    assert any(r["author"] == "@acmecloud" for r in store.export_rows(None)), "team tweets are stored"
    assert len(slack.posted()) == 2 and not any("maintenance" in m["text"] for m in slack.posted())
    answer = xapi.post("acme_support", "@alice sorry about that, we raised your quota", reply_to=question)
    searches = xapi.hits("search")
    pipeline.poll("acme/x")
    reply_queries = [q for q in xapi.queries()[searches:] if "is:reply" in q["query"]]
    assert len(reply_queries) == 1, "both waiting mentions are checked in one query (the team's own replies)"
    assert "from:acme_support" in reply_queries[0]["query"] and "from:acmecloud" in reply_queries[0]["query"]
    responses = store.responses(store.mention_id("x", question))
    assert len(responses) == 1
    assert responses[0]["responder"] == "@acme_support" and responses[0]["via"] == "x"
    assert responses[0]["url"] == f"https://x.com/acme_support/status/{answer}"
    assert abs((responses[0]["responded_at"] - snowflake_time(answer)).total_seconds()) < 1
    assert store.responses(store.mention_id("x", unanswered)) == []


def test_every_waiting_mention_is_checked_by_one_read_of_the_team_replies_within_the_read_budget(
        tmp_path, xapi, slack):
    """Not only the newest 20: one search for the team's replies covers every waiting conversation,
    and later calls read only the replies posted since."""
    pipeline, store, conn = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False), max_results=100)
    ids = [xapi.post("alice", f"Acme Cloud is broken again, can you help? ({i})") for i in range(30)]
    pipeline.poll("acme/x")
    pipeline.process()
    awaiting = store.reply_candidates("acme/x", "acme", xapi.clock() - timedelta(days=1))
    assert sorted(m.external_id for m in awaiting) == sorted(ids)
    for tweet in (ids[0], ids[17], ids[29]):  # the oldest, a middle one and the newest
        xapi.post("acme_support", "@alice sorry, fixed now", reply_to=tweet)
    searches = xapi.hits("search")
    found = conn.find_team_replies(awaiting)
    assert sorted(r.external_id for r in found) == sorted([ids[0], ids[17], ids[29]])
    assert all(r.responder == "@acme_support" for r in found)
    assert xapi.hits("search") == searches + 1, "one query for all 30 waiting mentions"
    served = xapi.served
    assert len(conn.find_team_replies(awaiting)) == 3 and xapi.served == served, "only newer replies are read again"
    store.add_usage("x:reads:default", f"{xapi.clock():%Y-%m}", 10_000)
    xapi.post("acme_support", "@alice done", reply_to=ids[5])
    searches = xapi.hits("search")
    assert len(conn.find_team_replies(awaiting)) == 3 and xapi.hits("search") == searches, "no reads past the cap"


def test_a_long_stretch_of_team_replies_is_read_over_a_few_polls_not_again_from_the_top(tmp_path, xapi, slack):
    pipeline, store, conn = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False), max_pages=1)
    asked = xapi.post("alice", "Acme Cloud is broken again, can you help?")
    xapi.post("acme_support", "@alice looking into it", reply_to=asked)
    for n in range(25):  # the team is busy elsewhere: 25 newer replies, 10 a page, one page a poll
        xapi.post("acme_support", f"@bob on it ({n})", reply_to=xapi.post("bob", f"hello there {n}"))
    answered = []
    for _ in range(4):
        pipeline.poll("acme/x")
        answered.append(bool(store.responses(store.mention_id("x", asked))))
    assert answered == [False, False, True, True], "pages 1, 2, then 3 (with the answer): each read once"
    reads = [q for q in xapi.queries() if "is:reply" in q["query"]]
    assert [bool(q.get("until_id")) for q in reads] == [False, True, True], "nothing waits after that: no read"


def test_html_entities_reach_slack_escaped_exactly_once(tmp_path, xapi, slack):
    pipeline, store, _ = pipeline_for(tmp_path, xapi, slack, x_source(mentions=False))
    tweet = xapi.post("alice", "Acme Cloud billing & support are awful, 2 < 3 <@U0123> broken")
    assert "&amp;" in xapi.tweets[int(tweet)]["text"], "the API escapes the text"
    pipeline.poll("acme/x")
    pipeline.process()
    assert stored(store) == [tweet]
    assert next(store.export_rows(None))["text"] == "Acme Cloud billing & support are awful, 2 < 3 <@U0123> broken"
    message = slack.posted()[0]
    excerpt = message["blocks"][2]["text"]["text"]
    assert "billing &amp; support" in excerpt and "2 &lt; 3 &lt;@U0123&gt;" in excerpt
    assert "&amp;amp;" not in str(message) and "<@U0123>" not in str(message)


def test_the_bearer_token_stays_out_of_reprs(xapi):
    settings = settings_for(xapi)
    assert BEARER not in repr(settings) and BEARER not in str(settings.x)
