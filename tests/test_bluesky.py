"""Bluesky through the real `websockets` client against the Jetstream emulator, and the pipeline."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest

from connectors import bluesky
from connectors.bluesky import BlueskyConnector, event_to_post
from emulators.bsky_appview import AppViewEmulator
from emulators.server import Reply
from emulators.jetstream import JetstreamEmulator, delete_event, link_facet, post_event, repost_event
from monitor.config import Settings
from monitor.config import load_settings
from tests.support.config import config_dict, pipeline_with_clock, write_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T0 = int(NOW.timestamp() * 1_000_000)
DID = "did:plc:alice"


@pytest.fixture
def jet():
    with JetstreamEmulator() as emulator:
        yield emulator
        bluesky.close_all()


@pytest.fixture
def appview():
    with AppViewEmulator() as emulator:
        yield emulator


@pytest.fixture
def pipeline_for(appview):
    def make(tmp_path, jet, slack, team=None, **platform):
        config = config_dict(tmp_path, slack.api_url, [{"type": "bluesky", "name": "sky", "interval": "1s"}],
                             bluesky={"jetstream_url": jet.url, "reconnect_min": "1s", "reconnect_max": "2s",
                                      "api": {"base_url": appview.url, **platform.pop("api", {})}, **platform})
        if team:
            config["brands"]["acme"]["team"] = {"bluesky": team}
        return pipeline_with_clock(tmp_path, config, NOW)
    return make


def stored(store) -> list[str]:
    return sorted(row["external_id"] for row in store.export_rows(None))


def mention(store, external_id: str):
    return store.mention_with_labels(store.mention_id("bluesky", external_id))[0]


def poll_until(pipeline, want: int, source="acme/sky", seconds: float = 15.0):
    """Poll until `want` mentions are stored in total (the reader is a background thread)."""
    deadline = time.monotonic() + seconds
    outcomes = []
    while True:
        outcomes.append(pipeline.poll(source))
        if len(stored(pipeline.store)) >= want or time.monotonic() > deadline:
            return outcomes
        time.sleep(0.05)


def start(pipeline, jet):
    """The first poll starts the shared reader at the clock's now; wait until it is connected."""
    pipeline.poll("acme/sky")
    deadline = time.monotonic() + 10
    while not jet.connects and time.monotonic() < deadline:
        time.sleep(0.02)


def test_posts_are_matched_on_names_handles_hashtags_and_link_domains(tmp_path, jet, slack, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    assert "wantedCollections=app.bsky.feed.post" in jet.connects[0] and f"cursor={T0}" in jet.connects[0]
    jet.send(post_event(T0 + 1, DID, "a1", "Acme Cloud is down again"))
    jet.send(post_event(T0 + 2, DID, "a2", "hey @acmecloud what happened"))
    jet.send(post_event(T0 + 3, DID, "a3", "look at this", facets=[link_facet("https://status.acme.io/incident")]))
    jet.send(post_event(T0 + 4, DID, "a4", "lunch was good"))
    jet.send(post_event(T0 + 5, DID, "a5", "the Acme anvil is back"))
    poll_until(pipeline, 3)
    assert stored(store) == [f"{DID}/a1", f"{DID}/a2", f"{DID}/a3"]
    row = next(r for r in store.export_rows(None) if r["external_id"] == f"{DID}/a1")
    assert row["url"] == f"https://bsky.app/profile/{DID}/post/a1"
    assert store.get_cursor("acme/sky")["time_us"] >= T0 + 3


TAG = {"$type": "app.bsky.richtext.facet#tag", "tag": "AcmeCloud"}


@pytest.mark.parametrize("text, facets, brand", [
    ("Acme Cloud is down again", None, "acme"),
    ("hey @acme.bsky.social is the API down?", None, "acme"),
    ("so slow today #AcmeCloud", [{"index": {"byteStart": 14, "byteEnd": 25}, "features": [TAG]}], "acme"),
    ("look at this", [link_facet("https://status.acme.io/incident")], "acme"),
    ("@support.betawidgets.com my order is missing", None, "beta"),
    ("Beta Widgets broke again", None, "beta"),
    ("check bw.example", [link_facet("https://shop.betawidgets.com/p/1")], "beta"),
    ("lunch was good", None, None),
])
def test_one_connection_finds_every_brands_names_handles_hashtags_and_link_domains(
        tmp_path, jet, slack, appview, text, facets, brand):
    config = config_dict(tmp_path, slack.api_url, [{"type": "bluesky", "name": "sky", "interval": "1s"}],
                         bluesky={"jetstream_url": jet.url, "api": {"base_url": appview.url}})
    config["brands"]["acme"].update(handles=["@acme.bsky.social"], hashtags=["#acmecloud"])
    config["brands"]["beta"] = {"names": ["Beta Widgets"], "handles": ["@support.betawidgets.com"],
                                "domains": ["betawidgets.com"], "slack_channel": "#beta",
                                "sources": [{"type": "bluesky", "name": "sky2", "interval": "1s"}]}
    pipeline, store, _ = pipeline_with_clock(tmp_path, config, NOW)
    start(pipeline, jet)
    pipeline.poll("beta/sky2")  # a second source (validate warns) drains the same reader
    jet.send(post_event(T0 + 1, DID, "p", text, facets=facets))
    jet.send(post_event(T0 + 2, DID, "end", "Acme Cloud marks the end"))
    poll_until(pipeline, 2 if brand else 1)
    rows = {row["external_id"]: row["brand"] for row in store.export_rows(None)}
    assert rows.get(f"{DID}/p") == brand
    assert len(jet.connects) == 1, "one Jetstream connection for every brand and source"


def test_a_restart_replays_from_the_stored_cursor_without_loss_or_duplicate(tmp_path, jet, slack, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, DID, "r1", "Acme Cloud one"))
    poll_until(pipeline, 1)
    cursor = store.get_cursor("acme/sky")["time_us"]
    bluesky.close_all()  # the daemon stops; posts keep coming
    jet.send(post_event(T0 + 2, DID, "r2", "Acme Cloud two"))
    jet.send(post_event(T0 + 3, DID, "r3", "Acme Cloud three"))
    again, store, _ = pipeline_for(tmp_path, jet, slack)
    poll_until(again, 3)
    assert stored(store) == [f"{DID}/r1", f"{DID}/r2", f"{DID}/r3"]
    assert f"cursor={cursor}" in jet.connects[-1]
    again.poll("acme/sky")
    assert stored(store) == [f"{DID}/r1", f"{DID}/r2", f"{DID}/r3"]


@pytest.mark.parametrize("trouble", ["dropped socket", "stalled stream"])
def test_the_reader_reconnects_from_where_it_was(tmp_path, jet, slack, trouble, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack, stall_timeout="1s")
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, DID, "d1", "Acme Cloud before"))
    poll_until(pipeline, 1)
    if trouble == "dropped socket":
        jet.drop()
    else:
        jet.stall()
        deadline = time.monotonic() + 10
        while len(jet.connects) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        jet.resume()
    jet.send(post_event(T0 + 2, DID, "d2", "Acme Cloud after"))
    poll_until(pipeline, 2)
    assert stored(store) == [f"{DID}/d1", f"{DID}/d2"]
    assert any(f"cursor={T0 + 1}" in query for query in jet.connects[1:])


@pytest.mark.parametrize("name, events, want, malformed", [
    ("not JSON", [lambda j: j.send_raw("{not json")], [], 1),
    ("a post without text", [lambda j: j.send_raw(json.dumps({
        "did": DID, "time_us": T0 + 1, "kind": "commit",
        "commit": {"operation": "create", "collection": "app.bsky.feed.post", "rkey": "x", "record": {}}}), T0 + 1)],
     [], 1),
    ("a commit that is not an object", [lambda j: j.send_raw(json.dumps({
        "did": DID, "time_us": T0 + 1, "kind": "commit", "commit": "x"}), T0 + 1)], [], 1),
    ("a repost of a stored post", [lambda j: j.send(post_event(T0 + 1, DID, "p1", "Acme Cloud rocks")),
                                   lambda j: j.send(repost_event(T0 + 2, "did:plc:bob", "rp", f"at://{DID}/p1"))],
     [f"{DID}/p1"], 0),
    ("the same post replayed", [lambda j: j.send(post_event(T0 + 1, DID, "p1", "Acme Cloud rocks")),
                                lambda j: j.send(post_event(T0 + 1, DID, "p1", "Acme Cloud rocks"))],
     [f"{DID}/p1"], 0),
    ("a delete", [lambda j: j.send(post_event(T0 + 1, DID, "p1", "Acme Cloud rocks")),
                  lambda j: j.send(delete_event(T0 + 2, DID, "p1"))], [f"{DID}/p1"], 0),
])
def test_events_are_judged_one_by_one(tmp_path, jet, slack, name, events, want, malformed, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    for send in events:
        send(jet)
    jet.send(post_event(T0 + 10, DID, "last", "Acme Cloud last"))
    outcomes = poll_until(pipeline, len(want) + 1)
    assert stored(store) == sorted(want + [f"{DID}/last"]), name
    assert sum(o.dropped.get("malformed", 0) for o in outcomes) == malformed
    assert all(o.failure is None for o in outcomes)


def test_a_hostile_post_is_escaped_in_slack(tmp_path, jet, slack, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, DID, "h1", "<!channel> Acme Cloud is broken, support ignores me <https://evil|click>"))
    poll_until(pipeline, 1)
    pipeline.process(flush_all=True)
    [message] = slack.posted("#acme-alerts")
    body = json.dumps(message)
    assert "<!channel>" not in body and "&lt;!channel&gt;" in body and "<https://evil|click>" not in body


def test_a_delete_marks_the_stored_mention_and_its_alert_is_not_sent_again(tmp_path, jet, slack, pipeline_for):
    pipeline, store, clock = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, DID, "x1", "Acme Cloud is broken, support ignores me"))
    poll_until(pipeline, 1)
    pipeline.process(flush_all=True)
    assert len(slack.posted("#acme-alerts")) == 1
    [row] = store.export_rows(None)
    assert store.mention_with_labels(row["id"])[0].extra.get("deleted_at") is None
    jet.send(delete_event(T0 + 2, DID, "x1"))
    jet.send(post_event(T0 + 3, DID, "x2", "unrelated"))
    deadline = time.monotonic() + 15
    while store.get_cursor("acme/sky")["time_us"] < T0 + 3 and time.monotonic() < deadline:
        pipeline.poll("acme/sky")
        time.sleep(0.05)
    assert store.mention_with_labels(row["id"])[0].extra["deleted_at"] == NOW.isoformat()
    pipeline.process(flush_all=True)
    assert len(slack.posted("#acme-alerts")) == 1
    [(ts, update)] = slack.updates()   # the alert already sent is edited in place, once
    shown = json.dumps(update["blocks"]) + update.get("text", "")
    assert ts == slack.posted("#acme-alerts")[0]["ts"] and "deleted by its author" in shown
    assert "support ignores me" not in shown
    pipeline.process(flush_all=True)
    assert len(slack.updates()) == 1


def test_a_cursor_older_than_the_replay_window_is_a_gap(jet, appview):
    settings = Settings(slack={"token": "xoxb-x"}, bluesky={"jetstream_url": jet.url, "replay_window": "1h",
                                                            "api": {"base_url": appview.url}},
                        brands={"acme": {"names": ["Acme"], "slack_channel": "#a",
                                         "sources": [{"type": "bluesky", "name": "sky"}]}})
    connector = BlueskyConnector(settings.brands["acme"].sources[0], settings, clock=lambda: NOW)
    old = T0 - 3 * 3600 * 1_000_000
    result = connector.fetch({"time_us": old})
    [gap] = result.gaps
    assert gap.window_start == NOW - timedelta(hours=3) and gap.window_end == NOW - timedelta(hours=1)
    assert result.posts == []
    deadline = time.monotonic() + 10
    while not jet.connects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f"cursor={T0 - 3600 * 1_000_000}" in jet.connects[0]


def test_an_event_becomes_a_post_with_its_links_tags_and_thread():
    event = post_event(T0, DID, "k1", "new release", reply={"root": {"uri": "at://x/app.bsky.feed.post/root"},
                                                            "parent": {"uri": "at://x/app.bsky.feed.post/par"}},
                       facets=[link_facet("https://acme.io/blog"),
                               {"index": {"byteStart": 0, "byteEnd": 3},
                                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "acmecloud"}]}],
                       embed={"$type": "app.bsky.embed.external", "external": {"uri": "https://news.example/acme"}})
    post = event_to_post(event, frozenset({DID}))
    assert post.text == "new release\n#acmecloud\nhttps://acme.io/blog\nhttps://news.example/acme"
    assert post.thread_id.endswith("/root") and post.parent_id.endswith("/par")
    assert post.extra["by_team"] is True and post.reach is None
    assert post.created_at == datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def test_validate_takes_team_handles_or_dids_and_warns_about_bad_handles_and_a_second_source(tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:1", [{"type": "bluesky", "name": "sky"}],
                         bluesky={"jetstream_url": "ws://127.0.0.1:1/subscribe"})
    acme = config["brands"]["acme"]
    acme["handles"] = ["@acmecloud", "@acme_cloud.bsky.social"]
    acme["team"] = {"bluesky": ["did:plc:acmeteam", "acme.bsky.social", "@support.acme.com", "not a handle"]}
    config["brands"]["beta"] = {"names": ["Beta"], "slack_channel": "#b",
                                "sources": [{"type": "bluesky", "name": "sky2"}]}
    _, warnings = load_settings(write_config(tmp_path, config))
    found = {(w.path, w.value): w.expected for w in warnings}
    assert "a handle (acme.bsky.social) or DID" in found[("brands.acme.team.bluesky", "'not a handle'")]
    assert [entry for path, entry in found if path == "brands.acme.team.bluesky"] == ["'not a handle'"]
    assert "domain name" in found[("brands.acme.handles", "'@acme_cloud.bsky.social'")]
    assert "one `type: bluesky` source" in found[("brands.*.sources", "acme/sky, beta/sky2")]


def test_a_jetstream_url_must_be_a_websocket():
    with pytest.raises(ValueError, match="ws:// or wss://"):
        Settings(slack={"token": "xoxb-x"}, bluesky={"jetstream_url": "https://jetstream.example"}, brands={})


def test_a_stream_down_for_longer_than_the_stall_timeout_fails_the_poll(jet, appview):
    from monitor.core.failures import FailureKind, SourceFailure

    settings = Settings(slack={"token": "xoxb-x"},
                        bluesky={"jetstream_url": "ws://127.0.0.1:9/subscribe", "stall_timeout": "1s",
                                 "connect_timeout": "1s", "reconnect_min": "1s", "api": {"base_url": appview.url}},
                        brands={"acme": {"names": ["Acme"], "slack_channel": "#a",
                                         "sources": [{"type": "bluesky", "name": "sky"}]}})
    connector = BlueskyConnector(settings.brands["acme"].sources[0], settings, clock=lambda: NOW)
    assert connector.fetch({"time_us": T0}).cursor == {"time_us": T0}
    deadline = time.monotonic() + 10
    while connector.hub.down_for() <= 1.0 and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(SourceFailure) as failure:
        connector.fetch({"time_us": T0})
    assert failure.value.kind == FailureKind.UNAVAILABLE and "unreachable" in str(failure.value)


def test_a_full_buffer_pauses_the_reader_until_drained_then_it_resumes_without_loss(tmp_path, jet, slack, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack, buffer_events=100)
    start(pipeline, jet)
    for i in range(1, 151):  # more than the buffer holds arrive before the next poll
        jet.send(post_event(T0 + i, DID, f"b{i:03d}", f"Acme Cloud note {i}"))
    deadline = time.monotonic() + 10
    while len(jet.connects) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # the reader takes 100, then closes the socket and waits
    poll_until(pipeline, 150)
    assert stored(store) == [f"{DID}/b{i:03d}" for i in range(1, 151)]
    assert any(f"cursor={T0 + 100}" in query for query in jet.connects[1:])  # resumed after what it held


# --- the AppView: handles and reach, team replies, the catch-up, its rate limit --------------------

def test_matched_posts_get_the_authors_handle_and_reach_read_25_profiles_at_a_time_and_cached(
        tmp_path, jet, slack, appview, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    for i in range(30):
        appview.profile(f"did:plc:u{i:02d}", f"user{i:02d}.bsky.social", followers=100 + i)
    start(pipeline, jet)
    for i in range(30):
        jet.send(post_event(T0 + 1 + i, f"did:plc:u{i:02d}", f"p{i}", f"Acme Cloud note {i}"))
    jet.send(post_event(T0 + 40, "did:plc:quiet", "q", "lunch was good"))  # not matched: never looked up
    poll_until(pipeline, 30)
    seven = mention(store, "did:plc:u07/p7")
    assert seven.author == "@user07.bsky.social" and seven.reach == 107 and seven.extra["did"] == "did:plc:u07"
    asked = [[v for k, v in query if k == "actors"] for query in appview.called("app.bsky.actor.getProfiles")]
    assert all(len(batch) <= 25 for batch in asked) and sorted(sum(asked, [])) == [f"did:plc:u{i:02d}" for i in range(30)]
    calls = len(asked)
    jet.send(post_event(T0 + 50, "did:plc:u03", "again", "Acme Cloud once more"))
    poll_until(pipeline, 31)
    assert len(appview.called("app.bsky.actor.getProfiles")) == calls, "known authors are not read again"
    assert mention(store, "did:plc:u03/again").reach == 103


def test_a_team_handle_is_resolved_to_its_did_and_the_teams_posts_never_alert(tmp_path, jet, slack, appview, pipeline_for):
    appview.profile("did:plc:team", "support.acme.com", followers=5000)
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack, team=["@support.acme.com"])
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, "did:plc:team", "t1", "Acme Cloud is down for maintenance, we are on it"))
    poll_until(pipeline, 1)
    [row] = store.export_rows(None)
    assert store.mention_with_labels(row["id"])[0].extra["by_team"] is True
    pipeline.process(flush_all=True)
    assert slack.posted("#acme-alerts") == []


def test_a_team_reply_seen_in_the_stream_answers_the_mention_before_it_alerts(tmp_path, jet, slack, appview, pipeline_for):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack, team=["did:plc:team"])
    start(pipeline, jet)
    mention = post_event(T0 + 1, DID, "m1", "Acme Cloud billing charged me twice, can anyone help?")
    reply = {"root": {"uri": f"at://{DID}/app.bsky.feed.post/m1", "cid": "c"},
             "parent": {"uri": f"at://{DID}/app.bsky.feed.post/m1", "cid": "c"}}
    jet.send(mention)
    jet.send(post_event(T0 + 2, "did:plc:team", "r1", "Sorry! DM us and we refund it.", reply=reply))
    poll_until(pipeline, 1)
    deadline = time.monotonic() + 10
    while store.get_cursor("acme/sky")["time_us"] < T0 + 2 and time.monotonic() < deadline:
        pipeline.poll("acme/sky")
    [answer] = store.responses(store.mention_id("bluesky", f"{DID}/m1"))
    assert answer["responder"] == "did:plc:team" and answer["via"] == "bluesky"
    pipeline.process(flush_all=True)
    assert slack.posted("#acme-alerts") == []


def test_a_team_reply_read_with_get_post_thread_closes_a_waiting_mention(tmp_path, jet, slack, appview, pipeline_for):
    appview.profile("did:plc:team", "support.acme.com")
    appview.profile(DID, "alice.bsky.social", followers=40)
    pipeline, store, clock = pipeline_for(tmp_path, jet, slack, team=["support.acme.com"],
                                          api={"reply_recheck": "10m"})
    start(pipeline, jet)
    created = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    mention_uri = appview.post(DID, "w1", "Acme Cloud is broken, support ignores me", created)
    jet.send(post_event(T0 + 1, DID, "w1", "Acme Cloud is broken, support ignores me"))
    poll_until(pipeline, 1)
    mention_id = store.mention_id("bluesky", f"{DID}/w1")
    assert store.responses(mention_id) == [] and len(appview.called("app.bsky.feed.getPostThread")) == 1
    appview.post("did:plc:team", "ans", "We are looking into it now", created + timedelta(minutes=5),
                 reply_to=mention_uri)
    pipeline.poll("acme/sky")
    assert len(appview.called("app.bsky.feed.getPostThread")) == 1, "read again only after reply_recheck"
    clock[0] = NOW + timedelta(minutes=11)
    pipeline.poll("acme/sky")
    [answer] = store.responses(mention_id)
    assert answer["responder"] == "@support.acme.com" and answer["url"].endswith("/post/ans")
    assert ("uri", mention_uri) in appview.called("app.bsky.feed.getPostThread")[-1]


@pytest.mark.parametrize("first_page_only, refused, budget, want, complete", [
    (False, False, 300, 120, True),
    (True, False, 300, 100, False),
    (False, True, 300, 0, False),
    (False, False, 1, 120, False),   # the first term's pages, then the request budget is spent
])
def test_an_outage_past_the_replay_window_is_caught_up_with_search_and_stored_once(
        tmp_path, jet, slack, appview, first_page_only, refused, budget, want, complete, pipeline_for):
    appview.search_first_page_only, appview.refuse_search = first_page_only, refused
    pipeline, store, clock = pipeline_for(tmp_path, jet, slack, replay_window="1h",
                                          api={"search_pages": 3, "catchup_requests": budget})
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, DID, "live", "Acme Cloud before the outage"))
    poll_until(pipeline, 1)
    for i in range(120):  # published while the daemon was down, now older than the replay window
        appview.post(DID, f"old{i:03d}", f"Acme Cloud outage report {i}", NOW + timedelta(minutes=10 + i))
    appview.post(DID, "other", "nothing to see", NOW + timedelta(minutes=30))
    clock[0] = NOW + timedelta(hours=5)
    outcome = pipeline.poll("acme/sky")
    assert outcome.failure is None
    assert len(stored(store)) == 1 + want
    [gap] = store.gaps()
    assert ("caught up with searchPosts" in gap["reason"]) is complete
    if budget == 1:
        assert len(appview.called("app.bsky.feed.searchPosts")) == 2 and "1 requests made" in gap["reason"]
    assert [v for k, v in appview.called("app.bsky.feed.searchPosts")[0] if k == "q"] == ['"Acme Cloud"']
    new_cursor = int((NOW + timedelta(hours=4)).timestamp() * 1_000_000)
    assert store.get_cursor("acme/sky")["time_us"] == new_cursor
    before = stored(store)  # old000 was caught up unless search missed it (first page only, refused)
    jet.send(post_event(new_cursor + 1, DID, "old000", "Acme Cloud outage report 0"))  # replayed: stored once
    jet.send(post_event(new_cursor + 2, DID, "after", "Acme Cloud after the outage"))
    poll_until(pipeline, len(before) + (1 if f"{DID}/old000" in before else 2))
    assert stored(store).count(f"{DID}/old000") == 1 and f"{DID}/after" in stored(store)


def test_the_appviews_rate_limit_headers_are_respected(tmp_path, jet, slack, appview, pipeline_for):
    appview.profile(DID, "alice.bsky.social", followers=40)
    appview.remaining = 11  # the default reserve is 10: one call, then the window is spent
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, DID, "a", "Acme Cloud one"))
    poll_until(pipeline, 1)
    jet.send(post_event(T0 + 2, "did:plc:bob", "b", "Acme Cloud two"))
    poll_until(pipeline, 2)
    assert len(appview.called("app.bsky.actor.getProfiles")) == 1, "no call while only the reserve is left"
    assert mention(store, f"{DID}/a").reach == 40 and mention(store, "did:plc:bob/b").reach is None
    assert mention(store, "did:plc:bob/b").author == "did:plc:bob"


def test_a_429_pauses_the_appview_until_its_reset(appview):
    from connectors.bluesky_api import AppView, BlueskyApi

    appview.profile(DID, "alice.bsky.social")
    appview.remaining = 0
    view = AppView(BlueskyApi(base_url=appview.url))
    assert view.profiles([DID], NOW) == {}
    assert view.window.paused_until(NOW) == datetime.fromtimestamp(appview.reset_at, tz=timezone.utc)
    assert view.profiles([DID], NOW) == {} and len(appview.called("app.bsky.actor.getProfiles")) == 1


def test_a_normal_close_of_the_stream_is_not_a_warning(tmp_path, slack, appview, pipeline_for, caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    with JetstreamEmulator() as jet:
        pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
        start(pipeline, jet)
        jet.drop()  # the server closes the socket normally (a Jetstream restart)
        deadline = time.monotonic() + 10
        while len(jet.connects) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    bluesky.close_all()
    jetstream = [r for r in caplog.records if r.name == "mentionwatch.connectors.bluesky"]
    assert any("closed" in r.getMessage() for r in jetstream)
    assert [r.getMessage() for r in jetstream if r.levelname == "WARNING"] == []


def test_status_shows_the_streams_cursor_age_and_lag(tmp_path, jet, slack, pipeline_for):
    import os
    import subprocess
    import sys
    from pathlib import Path

    pipeline, store, clock = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    clock[0] = NOW + timedelta(seconds=90)  # a poll 90 s later finds nothing newer: 90 s behind the stream
    pipeline.poll("acme/sky")
    mw = str(Path(sys.executable).with_name("mentionwatch"))
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "COLUMNS": "100"}
    report = subprocess.run([mw, "status", "--config", str(tmp_path / "config.yaml"), "--format", "json"],
                            capture_output=True, text=True, timeout=120, env=env)
    [stream] = json.loads(report.stdout)["streams"]
    assert stream["source_id"] == "acme/sky" and stream["position"] == NOW.isoformat()
    assert stream["lag_seconds"] == 90.0
    age = (datetime.now(timezone.utc) - NOW).total_seconds()
    assert abs(stream["cursor_age_seconds"] - age) < 60
    table = subprocess.run([mw, "status", "--config", str(tmp_path / "config.yaml")], capture_output=True, text=True,
                           timeout=120, env=env).stdout
    assert "stream acme/sky: cursor age" in table and "lag 90 s at its last poll" in table


def test_an_unreachable_appview_is_logged_once_and_posts_are_stored_without_reach(
        tmp_path, jet, slack, pipeline_for, caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack, api={"base_url": "http://127.0.0.1:9",
                                                                 "connect_timeout": "1s"})
    start(pipeline, jet)
    for i in range(3):
        jet.send(post_event(T0 + 1 + i, f"did:plc:u{i}", f"n{i}", f"Acme Cloud note {i}"))
        poll_until(pipeline, i + 1)
    assert all(mention(store, f"did:plc:u{i}/n{i}").reach is None for i in range(3))
    warned = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.connectors.bluesky_api"
              and r.levelname == "WARNING"]
    assert len(warned) == 1 and "handles, reach and team replies wait" in warned[0]


@pytest.mark.parametrize("trouble, answer", [
    ("server error", Reply.json({"error": "InternalServerError", "message": "Internal Server Error"}, 500)),
    ("not JSON", Reply(200, b"<html>upstream trouble</html>", {"Content-Type": "text/html"})),
    ("profiles not a list", Reply.json({"profiles": "did:plc:u0"})),
    ("junk profiles", Reply.json({"profiles": [1, None, {"did": 5}, {"did": "did:plc:u0", "followersCount": "9"}]})),
    ("stalled", Reply(stall=2.5)),
    ("dropped", Reply(drop=True)),
])
def test_a_failing_profile_lookup_neither_loses_nor_holds_up_mentions(tmp_path, jet, slack, appview, pipeline_for,
                                                                      trouble, answer):
    appview.profile("did:plc:carol", "carol.bsky.social", followers=40)
    appview.broken["app.bsky.actor.getProfiles"] = answer
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack, api={"read_timeout": "1s"})
    start(pipeline, jet)
    for i in range(2):
        jet.send(post_event(T0 + 1 + i, f"did:plc:u{i}", f"n{i}", f"Acme Cloud note {i}"))
    outcomes = poll_until(pipeline, 2)
    assert [o.failure for o in outcomes] == [None] * len(outcomes)
    assert stored(store) == ["did:plc:u0/n0", "did:plc:u1/n1"]
    assert [(mention(store, f"did:plc:u{i}/n{i}").author, mention(store, f"did:plc:u{i}/n{i}").reach)
            for i in range(2)] == [("did:plc:u0", None), ("did:plc:u1", None)]
    del appview.broken["app.bsky.actor.getProfiles"]
    jet.send(post_event(T0 + 3, "did:plc:carol", "c", "Acme Cloud works again"))
    poll_until(pipeline, 3)
    assert mention(store, "did:plc:carol/c").reach == 40 and mention(store, "did:plc:carol/c").author == \
        "@carol.bsky.social"


def test_a_stopped_daemon_leaves_no_stream_reader_reconnecting(tmp_path, slack, appview, caplog):
    import threading

    from emulators.mastodon import MastodonEmulator
    from monitor.daemon import Daemon

    caplog.set_level(logging.INFO, logger="mentionwatch")
    with JetstreamEmulator() as jet, MastodonEmulator() as instance:
        config = config_dict(tmp_path, slack.api_url, [
            {"type": "bluesky", "name": "sky", "interval": "1s"},
            {"type": "mastodon", "name": "m", "interval": "1s", "instances": [instance.url], "streaming": True}],
            bluesky={"jetstream_url": jet.url, "reconnect_min": "1s", "reconnect_max": "2s",
                     "api": {"base_url": appview.url}},
            mastodon={"connect_timeout": "1s", "read_timeout": "1s"})
        config["brands"]["acme"]["hashtags"] = ["#acmecloud"]
        path = write_config(tmp_path, config)
        daemon = Daemon(str(path), load_settings(path)[0])
        runner = threading.Thread(target=daemon.run, daemon=True)
        runner.start()
        deadline = time.monotonic() + 30
        while not (jet.connects and instance.stream_connects) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jet.connects and instance.stream_connects
        daemon.stop_event.set()
        runner.join(30)
        connects = (len(jet.connects), len(instance.stream_connects))
    time.sleep(3)  # a reader left running would have retried (1-2 s backoff) and warned by now
    assert not runner.is_alive() and connects == (1, 1)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
            and r.name.startswith(("mentionwatch.connectors.bluesky", "mentionwatch.connectors.mastodon"))] == []


BLUESKY_YAML = """\
slack: {{token: xoxb-validate-1234}}
bluesky:
  jetstream_url: {jetstream}
  api: {{base_url: {appview}}}
brands:
  acme:
    names: [Acme Cloud]
    handles: [{handle}]
    slack_channel: "#acme"
    team: {{bluesky: [{team}]}}
    sources:
      - {{type: bluesky, name: sky}}
"""
GOOD = {"jetstream": "wss://jetstream2.us-east.bsky.network/subscribe", "appview": "https://public.api.bsky.app",
        "handle": "'@acme.bsky.social'", "team": "'did:plc:acmeteam', support.acme.com"}


@pytest.mark.parametrize("change, args, code, want", [
    ({}, [], 0, "OK (1 brands, 1 sources)"),
    ({"jetstream": "https://jetstream.example/subscribe"}, [], 78, ":3: bluesky.jetstream_url: "),
    ({"appview": "ftp://appview.example"}, [], 78, ":4: bluesky.api.base_url: "),
    ({"team": "'not a handle'"}, [], 0, "warning: brands.acme.team.bluesky: 'not a handle': a handle"),
    ({"team": "'not a handle'"}, ["--strict"], 78, "'not a handle'"),
    ({"handle": "'@acme_cloud.bsky.social'"}, ["--strict"], 78,
     "brands.acme.handles: '@acme_cloud.bsky.social': a Bluesky handle is a domain name"),
])
def test_validate_checks_the_stream_and_appview_urls_and_the_handles(tmp_path, change, args, code, want):
    from typer.testing import CliRunner

    from monitor import cli

    path = tmp_path / "config.yaml"
    path.write_text(BLUESKY_YAML.format(**{**GOOD, **change}))
    result = CliRunner().invoke(cli.app, ["validate", str(path), *args])
    assert (result.exit_code, want in result.output) == (code, True), result.output


def test_a_refusing_stream_is_retried_with_growing_waits_and_warned_about_once(caplog):
    import socket
    import threading

    caplog.set_level(logging.INFO, logger="mentionwatch")
    server = socket.create_server(("127.0.0.1", 0))
    attempts: list[float] = []

    def refuse() -> None:  # accepts and hangs up before the websocket handshake, every time
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            attempts.append(time.monotonic())
            conn.close()

    threading.Thread(target=refuse, daemon=True).start()
    settings = Settings(slack={"token": "xoxb-x"},
                        bluesky={"jetstream_url": f"ws://127.0.0.1:{server.getsockname()[1]}/subscribe",
                                 "reconnect_min": 0.2, "reconnect_max": 0.8},
                        brands={"acme": {"names": ["Acme"], "slack_channel": "#a",
                                         "sources": [{"type": "bluesky", "name": "sky"}]}})
    BlueskyConnector(settings.brands["acme"].sources[0], settings, clock=lambda: NOW).fetch({"time_us": T0})
    deadline = time.monotonic() + 20
    while len(attempts) < 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    bluesky.close_all()
    server.close()
    # the first poll's cursor restarts the first attempt at once; the failures from there on back off
    gaps = [b - a for a, b in zip(attempts[1:], attempts[2:])]
    assert len(gaps) >= 5
    floors = [0.5 * min(0.2 * 2 ** i, 0.8) for i in range(len(gaps))]   # wait x U(0.5, 1.5), doubling to the cap
    assert all(gap >= floor - 0.02 for gap, floor in zip(gaps, floors)), gaps
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "mentionwatch.connectors.bluesky" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith("Jetstream disconnected"), warnings
