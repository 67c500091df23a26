"""The Reddit connector: real praw/prawcore over HTTP against the Reddit emulator."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from connectors.reddit.budget import BudgetState, plan
from connectors.reddit.connector import RedditConnector, search_queries
from emulators.reddit import RedditEmulator, fixture_children
from emulators.server import Reply
from monitor.config import ConfigError, Settings, load_settings
from monitor.daemon import build_pipeline
from monitor.core.failures import FailureKind, SourceFailure
from monitor.store import Store
from monitor.core.records import StoredMention
from tests.support.reddit import NOW, SECRET, TEAM, pipeline_for, platform, posts_source
from tests.support.config import config_dict, write_config

MENTIONWATCH = str(Path(sys.executable).with_name("mentionwatch"))


def mentionwatch_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([MENTIONWATCH, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", **(env or {})})


@pytest.fixture
def reddit():
    # A client id of its own per test: the request budget is shared per Reddit app, process-wide.
    with RedditEmulator(client_id=f"cid-{secrets.token_hex(6)}", client_secret=SECRET) as emulator:
        yield emulator


def settings_for(emu: RedditEmulator, sources: list[dict], **overrides) -> Settings:
    return Settings(slack={"token": "xoxb-x"}, reddit=platform(emu, **overrides),
                    brands={"acme": {"names": ["Acme Cloud"], "aliases": ["AcmeCloud"], "domains": ["acme.io"],
                                     "slack_channel": "#acme", "team": {"reddit": [TEAM]}, "sources": sources}})


def connector(emu: RedditEmulator, source: dict, **overrides) -> RedditConnector:
    settings = settings_for(emu, [source], **overrides)
    return RedditConnector(settings.brands["acme"].sources[0], settings)


def stored(store: Store) -> list[dict]:
    return list(store.export_rows(None))


# --- what becomes a mention ---------------------------------------------------------------------

def test_recorded_posts_become_mentions_with_reddit_fields(reddit):
    recorded = reddit.add_recorded("acme", fixture_children("TestSubredditListings.test_new.json"))
    gone = reddit.add_post("acme", "Acme Cloud ate my DNS records", "It really did.", author=None)
    removed = reddit.add_post("acme", "Acme Cloud referral codes", "[removed]", "spammer")
    ours = reddit.add_post("acme", "Acme Cloud maintenance window", "Saturday 02:00 UTC", TEAM)
    posts = {p.external_id: p for p in connector(reddit, posts_source()).fetch(None).posts}

    assert len(posts) == 100  # one page on a first poll
    sample = recorded[-1]
    post = posts[sample["name"]]
    assert (post.title, post.text, post.author) == (sample["title"], sample["selftext"], sample["author"])
    assert post.url == "https://www.reddit.com" + sample["permalink"]
    assert post.created_at == datetime.fromtimestamp(sample["created_utc"], timezone.utc)
    assert post.thread_id == sample["name"] and post.parent_id is None
    assert post.extra["subreddit"] == "acme" and post.extra["score"] == sample["score"]
    assert posts[gone["name"]].author is None
    assert posts[removed["name"]].text == "" and posts[removed["name"]].extra["removed"] is True
    assert posts[ours["name"]].extra["by_team"] is True
    assert not any(p.extra.get("by_team") for k, p in posts.items() if k != ours["name"])


def test_recorded_comments_become_mentions_with_thread_and_parent(reddit):
    recorded = reddit.add_recorded("acme", fixture_children("TestSubredditListings.test_comments.json"))
    post = reddit.add_post("acme", "Acme Cloud question", "How do I export?", "kim")
    removed = reddit.add_comment(post["name"], "[removed]", "someone")
    reply = reddit.add_comment(post["name"], "Acme Cloud has an export button under Settings", "lee")
    comments = {p.external_id: p for p in connector(reddit, posts_source(what="comments")).fetch(None).posts}

    assert removed["name"] not in comments
    sample = recorded[-1]
    comment = comments[sample["name"]]
    assert comment.text == sample["body"] and comment.title is None
    assert comment.thread_id == sample["link_id"] and comment.parent_id == sample["parent_id"]
    assert comment.url == f"https://www.reddit.com/r/acme/comments/{sample['link_id'][3:]}/_/{sample['id']}/"
    assert comment.extra["thread_title"] == sample["link_title"]
    ours = comments[reply["name"]]
    assert ours.url == "https://www.reddit.com" + reply["permalink"] and ours.parent_id == post["name"]


def test_reddit_entities_are_unescaped_where_text_enters(reddit):
    # Reddit's JSON carries titles and markdown bodies with &, < and > escaped, as sent here.
    post = reddit.add_post("acme", "Acme Cloud &amp; Salt &amp; Pine: 5 &lt; 6", "billing &gt; support &amp;amp; co", "kim")
    comment = reddit.add_comment(post["name"], "AT&amp;T and Acme Cloud &lt;3", "lee")
    posts = {p.external_id: p for p in connector(reddit, posts_source()).fetch(None).posts}
    comments = {p.external_id: p for p in connector(reddit, posts_source(what="comments")).fetch(None).posts}

    assert posts[post["name"]].title == "Acme Cloud & Salt & Pine: 5 < 6"
    assert posts[post["name"]].text == "billing > support &amp; co"  # unescaped once, as written
    assert comments[comment["name"]].text == "AT&T and Acme Cloud <3"


def test_search_uses_brand_terms_and_a_post_in_two_listings_is_stored_once(tmp_path, reddit, slack):
    reddit.add_post("acme", "Acme Cloud outage again?", "502s everywhere", "ann")
    reddit.add_post("selfhosted", "Leaving acme.io", "Moving my homelab backups off acme.io", "bo")
    reddit.add_post("selfhosted", "Gardening", "Tomatoes", "cy")
    pipeline, store, _ = pipeline_for(tmp_path, reddit, slack, [
        posts_source("posts", "acme", require_match=False),
        {"type": "reddit", "name": "search", "what": "search", "interval": "1s"}])
    for source_id in pipeline.sources:
        assert pipeline.poll(source_id).failure is None

    titles = sorted(row["title"] for row in stored(store))
    assert titles == ["Acme Cloud outage again?", "Leaving acme.io"]
    search = [r for r in reddit.requests if r.path == "/search"][0].query
    assert search["q"] == '"Acme Cloud" OR "Acme" OR "acme.io"' and search["sort"] == "new"


def test_search_reads_each_result_once_and_catches_late_indexed_ones(reddit):
    conn = connector(reddit, {"type": "reddit", "name": "search", "what": "search"})
    first = reddit.add_post("acme", "Acme Cloud first", "", "ann")
    cursor = conn.fetch(None).cursor
    newer = reddit.add_post("other", "AcmeCloud newer", "", "bo")
    late = reddit.add_post("other", "acme.io indexed late", "", "cy", created_utc=first["created_utc"] - 600)
    reddit.add_post("other", "Unrelated", "", "di")
    before = reddit.api_requests()
    result = conn.fetch(cursor)
    assert sorted(p.external_id for p in result.posts) == sorted([newer["name"], late["name"]])
    assert conn.fetch(result.cursor).posts == []
    assert reddit.api_requests() - before == 2


def test_long_term_lists_are_split_into_queries_reddit_accepts():
    settings = Settings(slack={"token": "x"}, brands={"b": {"names": [f"Product number {i}" for i in range(60)],
                                                           "slack_channel": "#b"}})
    queries = search_queries(settings.brands["b"])
    assert len(queries) > 1 and all(len(q) <= 512 for q in queries)
    assert sum(q.count('"') for q in queries) == 120


# --- cursors, restarts and gaps -----------------------------------------------------------------

def test_restart_resumes_from_the_cursor_with_nothing_lost_or_duplicated(tmp_path, reddit, slack):
    for i in range(5):
        reddit.add_post("acme", f"Acme Cloud post {i}", "text", "ann")
    sources = [posts_source("posts", "acme")]
    pipeline, store, _ = pipeline_for(tmp_path, reddit, slack, sources)
    assert len(pipeline.poll("acme/posts").new_ids) == 5
    store.close()

    for i in range(5, 40):
        reddit.add_post("acme", f"Acme Cloud post {i}", "text", "ann")
    requests_before = reddit.api_requests("/r/acme/new")
    pipeline, store, _ = pipeline_for(tmp_path, reddit, slack, sources)  # a new process on the same database
    assert len(pipeline.poll("acme/posts").new_ids) == 35
    assert reddit.api_requests("/r/acme/new") - requests_before == 1  # one page back to the cursor
    assert pipeline.poll("acme/posts").new_ids == []
    titles = [row["title"] for row in stored(store)]
    assert sorted(titles) == sorted(f"Acme Cloud post {i}" for i in range(40))
    assert store.get_cursor("acme/posts")["listings"]["r/acme/new"]["newest"] == reddit.subreddits["acme"].posts[-1]


def test_removed_cursor_item_does_not_stall_the_listing(reddit):
    conn = connector(reddit, posts_source())
    first = reddit.add_post("acme", "Acme Cloud one", "", "ann")
    cursor = conn.fetch(None).cursor
    reddit.remove(first["name"])  # Reddit's `before=<removed item>` would now return nothing, forever
    later = reddit.add_post("acme", "Acme Cloud two", "", "ann")
    assert [p.external_id for p in conn.fetch(cursor).posts] == [later["name"]]


def test_unreadable_items_and_cursors_are_skipped_not_fatal(reddit):
    good = reddit.add_post("acme", "Acme Cloud", "", "ann")
    page = {"kind": "Listing", "data": {"after": None, "children": [
        {"kind": "t3", "data": {"id": "../x", "created_utc": 1.0}}, {"kind": "t3", "data": {"id": "abc"}},
        "junk", {"kind": "t3", "data": good}]}}
    reddit.fail("/r/acme/new", Reply.json(page))
    conn = connector(reddit, posts_source())
    result = conn.fetch({"listings": {"r/acme/new": {"newest": "not a fullname", "newest_utc": "?"}}})
    assert [p.external_id for p in result.posts] == [good["name"]]
    assert result.cursor["listings"]["r/acme/new"]["newest"] == good["name"]


def test_burst_larger_than_a_listing_records_a_gap_shown_by_status(tmp_path, reddit, slack):
    reddit.listing_cap = 250  # Reddit's is about 1,000; smaller keeps the test quick
    start = time.time() - 3600
    reddit.add_post("acme", "Acme Cloud first", "", "ann", created_utc=start)
    pipeline, store, _ = pipeline_for(tmp_path, reddit, slack, [posts_source("posts", "acme")])
    pipeline.poll("acme/posts")
    for i in range(400):
        reddit.add_post("acme", f"Acme Cloud burst {i}", "", "ann", created_utc=start + 1 + i * 5)
    before = reddit.api_requests("/r/acme/new")
    assert len(pipeline.poll("acme/posts").new_ids) == 250
    assert reddit.api_requests("/r/acme/new") - before == 3

    [gap] = store.gaps("acme/posts")
    assert 120 <= gap["estimated_count"] <= 180  # 150 were out of reach
    assert "r/acme new posts" in gap["reason"]
    assert gap["window_start"].replace(tzinfo=timezone.utc).timestamp() == pytest.approx(start, abs=1)
    assert gap["window_end"].replace(tzinfo=timezone.utc).timestamp() == pytest.approx(start + 1 + 150 * 5, abs=1)
    status = mentionwatch_cli("status", "--config", str(tmp_path / "config.yaml")).stdout
    assert "Coverage gaps" in status and "acme/posts" in status
    assert SECRET not in status


# --- failures -----------------------------------------------------------------------------------

def _private(emu):
    emu.subreddit("acme", "private")


def _quarantined(emu):
    emu.subreddit("acme", "quarantined")


def _banned(emu):
    emu.subreddit("acme", "banned")


def _unknown(emu):
    emu.subreddits.pop("acme")


def _fault(reply: Reply, times: int = 1):
    return lambda emu: emu.fail("/r/acme/new", reply, times)


def _reject_tokens(emu):
    emu.reject_tokens = True


FAILURES = [
    ("5xx", _fault(Reply(503, b"busy"), 3), {}, FailureKind.UNAVAILABLE, "HTTP 503 after 3 attempts", None),
    ("stall", _fault(Reply(200, b"{}", stall=4), 3), {"timeout": 0.4}, FailureKind.UNAVAILABLE,
     "no answer within 0.4 s", None),
    ("429", _fault(Reply(429, b"{}", {"Retry-After": "42"})), {}, FailureKind.RATE_LIMITED, "429", 42),
    ("429 at reset", _fault(Reply(429, b"{}", {"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "600",
                                               "x-ratelimit-reset": "30"})), {}, FailureKind.RATE_LIMITED,
     "retry after 30 s", pytest.approx(30, abs=1)),
    ("private", _private, {}, FailureKind.AUTH, "r/acme is private", None),
    ("quarantined", _quarantined, {}, FailureKind.AUTH, "r/acme is quarantined", None),
    ("banned", _banned, {}, FailureKind.GONE, "r/acme was not found (banned)", None),
    ("unknown", _unknown, {}, FailureKind.GONE, "r/acme does not exist", None),
    ("html", _fault(Reply(200, b"<html>down for maintenance</html>", {"Content-Type": "text/html"})), {},
     FailureKind.BAD_PAYLOAD, "not JSON", None),
    ("not a listing", _fault(Reply.json({"error": "weird"})), {}, FailureKind.BAD_PAYLOAD, "other than a listing",
     None),
    ("401 forever", _reject_tokens, {}, FailureKind.AUTH, "rejects the app's access token", None),
    ("401 bare", _fault(Reply.json({"error": 401}, 401)), {}, FailureKind.AUTH, "without a www-authenticate", None),
    ("bad secret", lambda emu: None, {"client_secret": "rotated-elsewhere"}, FailureKind.AUTH,
     "check reddit.client_id and reddit.client_secret", None),
    ("bad password", lambda emu: None, {"username": "acme_bot", "password": "wrong"}, FailureKind.AUTH,
     "refused the app's login (invalid_grant)", None),
]


@pytest.mark.parametrize("setup, platform_overrides, kind, text, retry_after",
                         [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failures_are_classified_and_name_the_subreddit(reddit, setup, platform_overrides, kind, text, retry_after):
    reddit.add_post("acme", "Acme Cloud", "", "ann")
    setup(reddit)
    conn = connector(reddit, posts_source(), **platform_overrides)
    with pytest.raises(SourceFailure) as info:
        conn.fetch(None)
    assert info.value.kind is kind
    assert text in info.value.message
    assert info.value.retry_after == retry_after
    assert SECRET not in info.value.message and reddit.client_id not in info.value.message


def test_expired_token_and_one_5xx_are_absorbed_within_the_poll(reddit):
    reddit.add_post("acme", "Acme Cloud", "", "ann")
    conn = connector(reddit, posts_source())
    cursor = conn.fetch(None).cursor
    reddit.expire_tokens()
    reddit.fail("/r/acme/new", Reply(502, b"bad gateway"))
    later = reddit.add_post("acme", "Acme Cloud again", "", "ann")
    assert [p.external_id for p in conn.fetch(cursor).posts] == [later["name"]]
    assert reddit.token_requests() == 2


def test_every_source_and_thread_shares_one_client_and_its_token(reddit):
    reddit.add_post("acme", "Acme Cloud", "", "ann")
    reddit.add_post("beta", "Acme Cloud", "", "bob")
    conn = connector(reddit, posts_source())
    cursor = conn.fetch(None).cursor
    conn.fetch(cursor)
    assert reddit.token_requests() == 1
    other = connector(reddit, posts_source("other", "beta"))
    results = []
    workers = [threading.Thread(target=lambda c=c: results.append((c._reddit().shared, c.fetch(None))))
               for c in (conn, other, conn)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(results) == 3 and {id(shared) for shared, _ in results} == {id(conn._reddit().shared)}
    assert reddit.token_requests() == 1  # one OAuth token per app, not per source or thread


def test_failing_source_logs_once_per_state_change_and_tells_slack_once(tmp_path, reddit, slack, caplog):
    reddit.add_post("acme", "Acme Cloud", "", "ann")
    pipeline, store, clock = pipeline_for(tmp_path, reddit, slack, [posts_source("posts", "acme")])
    reddit.subreddit("acme", "private")
    caplog.set_level(logging.DEBUG)
    for _ in range(4):
        assert pipeline.poll("acme/posts").failure.kind is FailureKind.AUTH
        clock[0] += timedelta(hours=2)
    reddit.subreddit("acme", "public")
    assert pipeline.poll("acme/posts").failure is None

    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len([line for line in lines if "is failing" in line]) == 1
    assert len([line for line in lines if "recovered" in line]) == 1
    assert [line for line in lines if "is failing" in line][0].endswith(
        "r/acme is private (HTTP 403): remove it from this source's subreddits or use an account that may read it")
    pipeline.process()
    health = [m["text"] for m in slack.posted() if "Source acme/posts" in m["text"]]
    assert len(health) == 2 and "r/acme is private" in health[0] and "recovered" in health[1]


def test_rejected_credentials_disable_the_source_until_reload(tmp_path, reddit, slack, caplog):
    reddit.add_post("acme", "Acme Cloud", "", "ann")
    pipeline, store, clock = pipeline_for(tmp_path, reddit, slack, [posts_source("posts", "acme")])
    reddit.reject_tokens = True
    caplog.set_level(logging.INFO, logger="mentionwatch")
    assert pipeline.poll("acme/posts").failure.kind is FailureKind.AUTH
    spent = reddit.api_requests()
    for _ in range(3):
        clock[0] += timedelta(hours=2)
        assert pipeline.poll("acme/posts").failure is None  # not polled at all
    assert reddit.api_requests() == spent
    assert store.get_health("acme/posts").state == "disabled"
    lines = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.monitor.pipeline"]
    assert [line for line in lines if "acme/posts" in line] == [
        "source acme/posts disabled: " + store.get_health("acme/posts").message
        + "; fix its credentials, then reload (SIGHUP) or restart"]
    pipeline.process()
    assert len([m for m in slack.posted() if "Source acme/posts" in m["text"]]) == 1
    reddit.reject_tokens = False
    reloaded = build_pipeline(pipeline.settings, store)  # what SIGHUP does: the source is tried again
    assert reloaded.poll("acme/posts").failure is None
    assert store.get_health("acme/posts").state == "ok"


# --- rate limits --------------------------------------------------------------------------------

def test_429_reschedules_the_poll_and_holds_every_source_of_the_app(tmp_path, reddit, slack):
    reddit.add_post("acme", "Acme Cloud", "", "ann")
    reddit.add_post("other", "Acme Cloud", "", "ann")
    pipeline, store, clock = pipeline_for(tmp_path, reddit, slack, [posts_source("posts", "acme"),
                                                                    posts_source("more", "other")])
    reddit.fail("/r/acme/new", Reply(429, b"{}", {"Retry-After": "120"}))
    started = time.monotonic()
    outcome = pipeline.poll("acme/posts")
    assert outcome.failure.kind is FailureKind.RATE_LIMITED
    assert outcome.deferred_until == NOW + timedelta(seconds=120)
    held = pipeline.poll("acme/more")  # same app: held back by the shared budget, nothing sent
    assert held.failure.kind is FailureKind.RATE_LIMITED and 100 < held.failure.retry_after <= 120
    assert reddit.api_requests() == 1
    clock[0] += timedelta(seconds=60)
    assert pipeline.poll("acme/posts").deferred_until == NOW + timedelta(seconds=120)
    assert reddit.api_requests() == 1
    assert time.monotonic() - started < 60  # nobody slept for the 120 s


def test_exhausted_reddit_window_raises_instead_of_sleeping(reddit):
    reddit.ratelimit = (2, 600.0)
    reddit.add_post("acme", "Acme Cloud", "", "ann")
    conn = connector(reddit, posts_source())
    cursor = conn.fetch(None).cursor
    conn.fetch(cursor)  # Reddit now says: 0 remaining, reset in ~600 s
    started = time.monotonic()
    with pytest.raises(SourceFailure) as info:
        conn.fetch(cursor)
    assert info.value.kind is FailureKind.RATE_LIMITED and 590 <= info.value.retry_after <= 600
    assert time.monotonic() - started < 60 and reddit.api_requests() == 2  # nobody slept for the 600 s


def test_budget_is_shared_by_every_source_and_thread_of_one_app(reddit):
    for sub in ("a1", "a2", "a3", "a4"):
        reddit.add_post(sub, "Acme Cloud", "", "ann")
    settings = settings_for(reddit, [posts_source(f"s{i}", sub) for i, sub in enumerate(("a1", "a2", "a3", "a4"))],
                            requests_per_minute=30, max_wait=0)  # 3 at once, then one every 2 s
    connectors = [RedditConnector(src, settings) for src in settings.brands["acme"].sources]
    assert len({id(c.budget) for c in connectors}) == 1
    outcomes: list = []
    gate = threading.Barrier(len(connectors))

    def poll(conn: RedditConnector) -> None:
        gate.wait()
        try:
            outcomes.append(conn.fetch(None))
        except SourceFailure as failure:
            outcomes.append(failure)

    threads = [threading.Thread(target=poll, args=(c,)) for c in connectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    failures = [o for o in outcomes if isinstance(o, SourceFailure)]
    assert len(outcomes) == 4 and len(failures) == 1 and reddit.api_requests() == 3
    assert failures[0].kind is FailureKind.RATE_LIMITED and 0 < failures[0].retry_after <= 2
    assert reddit.token_requests() == 1  # one praw.Reddit per app, shared by the threads


def test_budget_plan_paces_on_reddit_headers_only_when_they_are_tighter():
    roomy = BudgetState(tokens=10, at=0.0, server_remaining=500, server_reset_at=300.0)
    state, wait = plan(roomy, 0.0, 100)
    assert wait == 0 and state.server_remaining == 499
    tight = BudgetState(tokens=1, at=0.0, server_remaining=10, server_reset_at=100.0)  # 0.1 a second
    state, first = plan(tight, 0.0, 100)
    state, second = plan(state, 0.0, 100)
    assert first == 0 and second == pytest.approx(100 / 9)  # 9 left for 100 s
    _, after_reset = plan(BudgetState(tokens=10, at=0.0, server_remaining=0, server_reset_at=5.0), 6.0, 100)
    assert after_reset == 0


# --- team replies -------------------------------------------------------------------------------

def test_team_reply_is_recorded_and_team_posts_never_alert(tmp_path, reddit, slack):
    question = reddit.add_post("acme", "Acme Cloud billed me twice", "Two charges and no answer to my ticket. "
                               "Is anyone else seeing double billing from Acme Cloud?", "kim")
    reddit.add_post("acme", "Acme Cloud maintenance", "Is the Frankfurt region read-only on Saturday? Yes, "
                    "for 5 minutes: Acme Cloud databases there are upgraded.", TEAM)
    pipeline, store, clock = pipeline_for(tmp_path, reddit, slack, [posts_source("posts", "acme")])
    pipeline.poll("acme/posts")
    pipeline.process()
    assert [m["text"] for m in slack.posted() if "Frankfurt" in m["text"]] == []
    assert len([m for m in slack.posted() if "double billing" in m["text"]]) == 1

    reddit.add_comment(question["name"], "Any update?", "kim")
    answer = reddit.add_comment(question["name"], "Sorry! Refunds go out today.", TEAM.lower())
    pipeline.poll("acme/posts")
    [response] = store.responses(store.mention_id("reddit", question["name"]))
    assert response["responder"] == TEAM.lower() and response["via"] == "reddit"
    assert response["url"] == "https://www.reddit.com" + answer["permalink"]
    assert response["responded_at"].replace(tzinfo=timezone.utc).timestamp() == pytest.approx(answer["created_utc"])


def mention(item: dict, brand: str = "acme") -> StoredMention:
    return StoredMention(id=1, source="reddit", external_id=item["name"], source_id="acme/x", brand=brand,
                         matched={brand: []}, url=None, author=item["author"], title=None, text="", created_at=None,
                         fetched_at=NOW, reach=None,
                         extra={"thread_id": item.get("link_id", item["name"])})


def test_a_comment_counts_as_answered_only_by_a_team_reply_under_it(reddit):
    post = reddit.add_post("acme", "Acme Cloud thread", "", "ann")
    asked = reddit.add_comment(post["name"], "Acme Cloud, where is my refund?", "kim")
    other = reddit.add_comment(post["name"], "Acme Cloud, why is the dashboard slow?", "lee")
    reddit.add_comment(other["name"], "We are on it", TEAM)
    conn = connector(reddit, posts_source())
    assert [r.external_id for r in conn.find_team_replies([mention(asked), mention(other)])] == [other["name"]]

    reply = reddit.add_comment(reddit.add_comment(asked["name"], "Same here", "mo")["name"], "Refunded!", TEAM)
    assert conn.find_team_replies([mention(asked)]) == []  # checked a moment ago: not again before reply_recheck
    conn.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=11)
    [found] = conn.find_team_replies([mention(asked)])
    assert (found.external_id, found.responder) == (asked["name"], TEAM)
    assert found.url == "https://www.reddit.com" + reply["permalink"]
    assert found.responded_at == datetime.fromtimestamp(reply["created_utc"], timezone.utc)


def test_team_reply_checks_are_bounded_and_spaced(reddit):
    post = reddit.add_post("acme", "Acme Cloud", "", "ann")
    waiting = [mention(reddit.add_comment(post["name"], f"Acme Cloud? {i}", "kim")) for i in range(12)]
    conn = connector(reddit, posts_source(), reply_checks_per_poll=5, reply_recheck="10m", requests_per_minute=600)
    checked = []
    for _ in range(4):
        before = reddit.api_requests("/comments/" + post["id"])
        conn.find_team_replies(waiting)
        checked.append(reddit.api_requests("/comments/" + post["id"]) - before)
    assert checked == [5, 5, 2, 0]
    conn.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=11)
    conn.find_team_replies(waiting)
    assert reddit.api_requests("/comments/" + post["id"]) == 17


def test_team_reply_checks_only_use_spare_budget(reddit):
    post = reddit.add_post("acme", "Acme Cloud", "", "ann")
    conn = connector(reddit, posts_source(), requests_per_minute=10)  # one request at once
    conn.fetch(None)
    assert conn.find_team_replies([mention(post)]) == []
    assert reddit.api_requests() == 1


# --- config -------------------------------------------------------------------------------------

def test_reddit_source_without_credentials_is_a_config_error_naming_it(tmp_path, slack):
    config = config_dict(tmp_path, slack.api_url, [posts_source("reddit-posts", "acme")])
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, config))
    assert "acme/reddit-posts" in str(info.value) and "reddit:" in str(info.value)


@pytest.mark.parametrize("source, expected", [
    ({"what": "posts", "subreddits": []}, "needs at least one subreddit"),
    ({"what": "comments", "subreddits": ["has space"]}, "expected subreddit names"),
    ({"what": "posts", "query": "acme"}, "query is only for what: search"),
    ({"what": "tweets"}, "'posts', 'comments' or 'search'"),
])
def test_bad_reddit_sources_are_reported(tmp_path, slack, reddit, source, expected):
    config = config_dict(tmp_path, slack.api_url, [{"type": "reddit", "name": "r", "subreddits": ["acme"], **source}],
                         reddit=platform(reddit))
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, config))
    assert expected in str(info.value)


def test_validate_warns_when_the_watchlists_need_more_than_the_budget(tmp_path, slack, reddit):
    subs = [f"sub{i}" for i in range(30)]
    sources = [{"type": "reddit", "name": "posts", "subreddits": subs, "interval": "15s"},
               {"type": "reddit", "name": "comments", "what": "comments", "subreddits": subs[:10], "interval": "1m"}]
    config = config_dict(tmp_path, slack.api_url, sources,
                         reddit={**platform(reddit), "client_secret": "${REDDIT_SECRET}"})
    path = write_config(tmp_path, config)
    result = mentionwatch_cli("validate", str(path), env={"REDDIT_SECRET": SECRET})
    output = result.stdout + result.stderr
    assert "reddit.requests_per_minute" in output and "need about 130 requests a minute" in output
    assert SECRET not in output

    sources[0]["interval"] = "1m"  # 40 a minute: within the default 100
    _, warnings = load_settings(write_config(tmp_path, config), env={"REDDIT_SECRET": SECRET})
    assert not [w for w in warnings if w.path == "reddit.requests_per_minute"]
