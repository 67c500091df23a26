"""A calm first run, and answers found before alerts: the real pipeline against the emulators."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest

from emulators.feeds import render_rss
from emulators.reddit import RedditEmulator
from emulators.slack import channel_id_for
from emulators.x import XEmulator
from tests.support.config import config_dict, feed_source, pipeline_with_clock

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
COMPLAINTS = ["lost my data and support is silent, terrible", "billed me twice, awful service",
              "is down again, broken for hours", "deleted my backups, this is terrible"]


def history(brand: str, hours: int = 48, every: timedelta = 2 * H) -> list[dict]:
    """A blog feed with a post about `brand` every two hours for `hours`: complaints and neutral posts."""
    items = []
    for n in range(hours // 2):
        text = (f"{brand} {COMPLAINTS[n % len(COMPLAINTS)]}" if n % 3 == 0
                else f"{brand} published its quarterly notes ({n})")
        items.append({"id": f"{brand}-{n}", "title": text, "link": f"https://blog.example.com/{brand}/{n}",
                      "published": NOW - n * every - timedelta(minutes=15), "description": text, "author": "kim"})
    return items


def two_brands(tmp_path, feeds, slack, **routes):
    feeds.set_feed("acme", render_rss("Acme blog", "https://blog.example.com/", history("Acme Cloud")))
    feeds.set_feed("globex", render_rss("Globex blog", "https://blog.example.com/", history("Globex")))
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("acme"))])
    config["brands"]["acme"]["reply_within"] = "1h"
    config["brands"]["globex"] = {"names": ["Globex"], "slack_channel": "#globex", "reply_within": "1h",
                                  "sources": [feed_source("blog", feeds.url_for("globex"))]}
    config["routes"] |= {"repeat_interval": "1h", **routes}
    return pipeline_with_clock(tmp_path, config, NOW)


def top_level(slack, channel: str) -> list[dict]:
    return [m for m in slack.posted(channel) if not m.get("thread_ts")]


def in_thread(slack, parent: dict) -> list[dict]:
    return [m for m in slack.messages if m.get("thread_ts") == parent["ts"]]


def test_a_first_run_over_48_hours_of_history_is_one_summary_per_brand_with_its_list_in_the_thread(
        database, tmp_path, feeds, slack):
    pipeline, store, clock = two_brands(tmp_path, feeds, slack)
    for source in ("acme/blog", "globex/blog"):
        pipeline.poll(source)
    stored = list(store.export_rows(None))
    assert len(stored) == 24, "12 posts a brand within the 24 h first_poll_lookback; the older half is skipped"
    assert {g["source_id"] for g in store.gaps()} == {"acme/blog", "globex/blog"}, "what was skipped is a gap"
    pipeline.process()
    assert slack.messages == [], "the summary waits for the brand's sources to finish their backlog"
    clock[0] = NOW + timedelta(seconds=31)
    pipeline.process()
    for channel, name in (("#acme-alerts", "Acme Cloud"), ("#globex", "Globex")):
        (summary,) = top_level(slack, channel)
        assert f"Backfilled 12 mentions of {name} from the last" in summary["text"]
        assert "4 complaints still unanswered" in summary["text"]
        (listing,) = in_thread(slack, summary)
        assert listing["text"].count(name) >= 4 and "Handled" in str(listing["blocks"])
    assert len(slack.messages) == 4
    for hours in (1, 2, 5, 30):  # every backlog complaint is overdue by now: nobody is paged for it
        clock[0] = NOW + hours * H
        pipeline.process()
    assert len(slack.messages) == 4, "no escalation or reminder for the backlog"
    clocks = store.open_clocks()
    assert len(clocks) == 8 and {c.state for c in clocks} == {"backlog"}
    assert all(c.deadline < clock[0] for c in clocks), "their clocks show them overdue"

    feeds.set_feed("acme", render_rss("Acme blog", "https://blog.example.com/", [
        {"id": "new", "title": "Acme Cloud lost my data, terrible", "link": "https://blog.example.com/new",
         "published": clock[0], "description": "Acme Cloud deleted my backups, this is terrible", "author": "lee"},
        *history("Acme Cloud")]))
    pipeline.poll("acme/blog")
    pipeline.process()
    (alert,) = [m for m in top_level(slack, "#acme-alerts") if "Backfilled" not in m["text"]]
    assert "deleted my backups" in alert["text"], "a new complaint after the backlog alerts as usual"


def test_a_long_outage_is_backfilled_too_and_a_short_one_is_not(database, tmp_path, feeds, slack):
    pipeline, store, clock = two_brands(tmp_path, feeds, slack)
    pipeline.poll("acme/blog")
    clock[0] = NOW + timedelta(minutes=1)
    pipeline.process(flush_all=True)
    assert len(top_level(slack, "#acme-alerts")) == 1

    def publish(title: str, at: datetime, n: int) -> None:
        feeds.set_feed("acme", render_rss("Acme blog", "https://blog.example.com/", [
            {"id": f"later-{n}", "title": title, "link": f"https://blog.example.com/later/{n}", "published": at,
             "description": title, "author": "lee"}, *history("Acme Cloud")]))

    clock[0] = NOW + 30 * timedelta(minutes=1)  # polled again after half an hour: not an outage
    publish("Acme Cloud is down again, broken for hours", clock[0] - timedelta(minutes=20), 1)
    pipeline.poll("acme/blog")
    pipeline.process(flush_all=True)
    assert len(top_level(slack, "#acme-alerts")) == 2, "alerted one by one"
    clock[0] += 3 * H  # the source was unreachable for three hours
    publish("Acme Cloud billed me twice, awful service", clock[0] - 2 * H, 2)
    pipeline.poll("acme/blog")
    pipeline.process(flush_all=True)
    texts = [m["text"] for m in top_level(slack, "#acme-alerts")]
    assert len(texts) == 3 and texts[-1].startswith("Backfilled 1 mention of Acme Cloud")


def test_escalation_goes_into_its_alerts_thread_after_it(database, tmp_path, feeds, slack):
    feeds.set_feed("acme", render_rss("Acme blog", "https://blog.example.com/", [
        {"id": "1", "title": "Acme Cloud lost my data", "link": "https://blog.example.com/1", "published": NOW,
         "description": "Terrible, Acme Cloud deleted my backups.", "author": "kim"}]))
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("acme"))])
    config["brands"]["acme"]["reply_within"] = "1h"
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, NOW)
    pipeline.poll("acme/blog")
    pipeline.process()
    (alert,) = top_level(slack, "#acme-alerts")
    clock[0] = NOW + 2 * H
    pipeline.process()
    assert top_level(slack, "#acme-alerts") == [alert], "no top-level escalation"
    (escalation,) = [m for m in in_thread(slack, alert) if "Unanswered past" in str(m["blocks"])]
    assert float(escalation["ts"]) > float(alert["ts"])


def test_an_escalation_to_another_channel_links_to_its_alert_and_waits_for_it(database, tmp_path, feeds, slack):
    """A complaint found after its deadline already passed: the escalation is queued only once its alert
    is, and posted after it, with a link to it."""
    feeds.set_feed("acme", render_rss("Acme blog", "https://blog.example.com/", [
        {"id": "1", "title": "Acme Cloud lost my data", "link": "https://blog.example.com/1",
         "published": NOW - timedelta(minutes=9), "description": "Terrible, Acme Cloud deleted my backups.",
         "author": "kim"}]))
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("acme"), interval="6h")])
    config["brands"]["acme"]["reply_within"] = "5m"
    config["routes"] |= {"escalation_channel": "#acme-escalations", "group_wait": "30s", "group_by": ["brand"]}
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, NOW)
    pipeline.poll("acme/blog")
    pipeline.process()
    assert slack.messages == [], "its group waits: no escalation before the alert"
    clock[0] = NOW + timedelta(seconds=31)
    pipeline.process()
    clock[0] = NOW + timedelta(seconds=40)
    pipeline.process()
    (alert,) = top_level(slack, "#acme-alerts")
    (escalation,) = slack.posted("#acme-escalations")
    assert float(escalation["ts"]) > float(alert["ts"])
    link = f"https://slack.com/archives/{channel_id_for('#acme-alerts')}/p{alert['ts'].replace('.', '')}"
    assert f"<{link}|the alert>" in str(escalation["blocks"])


# --- answered before alerted ----------------------------------------------------------------------

@pytest.fixture
def reddit():
    with RedditEmulator(client_id=f"cid-{secrets.token_hex(6)}", client_secret="s3cret") as emulator:
        yield emulator


@pytest.fixture
def xapi():
    with XEmulator(bearer_token="x-bearer") as emulator:
        for name in ("acmecloud", "acme_help", "alice", "bob"):
            emulator.add_user(name)
        yield emulator


def test_a_reddit_post_the_team_answered_before_the_first_poll_is_stored_answered_and_never_paged(
        database, tmp_path, reddit, slack):
    now = datetime.now(timezone.utc)
    answered = reddit.add_post("acme", "Acme Cloud billed me twice", "Two charges, is this a known problem?", "kim")
    reply = reddit.add_comment(answered["name"], "Sorry! Refunded, it was a bug on our side.", "Acme_Help")
    waiting = reddit.add_post("acme", "Acme Cloud is down", "Dashboard broken for an hour, terrible", "lee")
    config = config_dict(tmp_path, slack.api_url, [{"type": "reddit", "name": "posts", "what": "posts",
                                                    "subreddits": ["acme"], "interval": "1m"}],
                         reddit={"client_id": reddit.client_id, "client_secret": reddit.client_secret,
                                 "oauth_url": reddit.url, "reddit_url": reddit.url, "timeout": "2s"})
    config["brands"]["acme"]["team"] = {"reddit": ["acme_help"]}
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, now)
    pipeline.poll("acme/posts")
    (response,) = store.responses(store.mention_id("reddit", answered["name"]))
    assert response["responder"] == "Acme_Help" and response["via"] == "reddit"
    assert response["responded_at"].timestamp() == pytest.approx(reply["created_utc"])
    pipeline.process(flush_all=True)
    assert [m for m in slack.messages if "Two charges" in str(m)] == [], "answered: never paged"
    assert len([m for m in slack.messages if "Dashboard broken" in m["text"]]) == 1
    assert store.responses(store.mention_id("reddit", waiting["name"])) == []


def test_an_x_mention_the_team_answered_before_the_first_poll_is_stored_answered_and_never_paged(
        database, tmp_path, xapi, slack):
    asked = xapi.post("alice", "@acmecloud my deploys fail with quota errors, Acme Cloud is broken, help?")
    answer = xapi.post("acme_help", "@alice sorry, we raised your quota", reply_to=asked)
    xapi.post("bob", "Acme Cloud billing charged me twice, terrible, can anyone help?")
    config = config_dict(tmp_path, slack.api_url, [{"type": "x", "name": "x", "interval": "1m"}],
                         x={"bearer_token": "x-bearer", "base_url": xapi.url, "connect_timeout": "1s",
                            "read_timeout": "1s", "max_results": 10})
    config["brands"]["acme"]["team"] = {"x": ["@acme_help"]}
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, xapi.clock())
    pipeline.poll("acme/x")
    (response,) = store.responses(store.mention_id("x", asked))
    assert response["responder"] == "@acme_help" and response["url"].endswith(f"/status/{answer}")
    pipeline.process(flush_all=True)
    alerts = [m for m in slack.messages if not m.get("thread_ts")]
    assert len(alerts) == 1 and "charged me twice" in alerts[0]["text"] and "quota" not in str(slack.messages)


def test_every_waiting_reddit_mention_is_checked_not_only_the_newest_few(database, tmp_path, reddit, slack):
    now = datetime.now(timezone.utc)
    posts = [reddit.add_post("acme", f"Acme Cloud question {n}", "How do I move my data out? Help?", "kim")
             for n in range(30)]
    config = config_dict(tmp_path, slack.api_url, [{"type": "reddit", "name": "posts", "what": "posts",
                                                    "subreddits": ["acme"], "interval": "1m"}],
                         reddit={"client_id": reddit.client_id, "client_secret": reddit.client_secret,
                                 "oauth_url": reddit.url, "reddit_url": reddit.url, "timeout": "2s"})
    config["brands"]["acme"]["team"] = {"reddit": ["acme_help"]}
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, now)
    pipeline.poll("acme/posts")
    pipeline.process(flush_all=True)
    for post in (posts[0], posts[14], posts[29]):  # the oldest, a middle one and the newest
        reddit.add_comment(post["name"], "Export is under Settings > Data.", "acme_help")
    before = reddit.api_requests("/comments/")
    pipeline.poll("acme/posts")
    answered = {p["name"] for p in posts if store.responses(store.mention_id("reddit", p["name"]))}
    assert answered == {posts[0]["name"], posts[14]["name"], posts[29]["name"]}
    assert reddit.api_requests("/user/acme_help/comments") == 2 and reddit.api_requests("/comments/") == before


def test_a_burst_beyond_the_channels_budget_goes_into_threads_and_every_message_arrives_once(
        database, tmp_path, feeds, slack):
    items = [{"id": str(n), "title": f"Acme Cloud lost my data ({n})", "link": f"https://blog.example.com/{n}",
              "published": NOW, "description": f"Terrible, Acme Cloud deleted my backups ({n}).", "author": "kim"}
             for n in range(25)]
    feeds.set_feed("acme", render_rss("Acme blog", "https://blog.example.com/", items))
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("acme"))])
    config["slack"]["channel_messages_per_minute"] = 20
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, NOW)
    pipeline.poll("acme/blog")
    pipeline.process()
    tops = top_level(slack, "#acme-alerts")
    assert len(tops) == 20, "one message per mention (group_by: mention), 20 a minute at most"
    folded = [m for m in slack.posted("#acme-alerts") if m.get("thread_ts")]
    assert len(folded) == 5 and {m["thread_ts"] for m in folded} == {tops[-1]["ts"]}
    assert "more than 20 messages a minute" in str(folded[0]["blocks"])
    shown = sorted(int(b["block_id"].split(":")[1]) for m in slack.messages for b in m["blocks"]
                   if b.get("block_id", "").startswith("mention:"))
    assert shown == sorted(set(shown)) and len(shown) == 25, "each mention once"
