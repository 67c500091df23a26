"""Bluesky through the real `websockets` client against the Jetstream emulator, and the pipeline."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from connectors import bluesky
from connectors.bluesky import BlueskyConnector, event_to_post
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


def pipeline_for(tmp_path, jet, slack, **platform):
    config = config_dict(tmp_path, slack.api_url, [{"type": "bluesky", "name": "sky", "interval": "1s"}],
                         bluesky={"jetstream_url": jet.url, "reconnect_min": "1s", "reconnect_max": "2s",
                                  **platform})
    return pipeline_with_clock(tmp_path, config, NOW)


def stored(store) -> list[str]:
    return sorted(row["external_id"] for row in store.export_rows(None))


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


def test_posts_are_matched_on_names_handles_hashtags_and_link_domains(tmp_path, jet, slack):
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


def test_a_restart_replays_from_the_stored_cursor_without_loss_or_duplicate(tmp_path, jet, slack):
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
def test_the_reader_reconnects_from_where_it_was(tmp_path, jet, slack, trouble):
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
def test_events_are_judged_one_by_one(tmp_path, jet, slack, name, events, want, malformed):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    for send in events:
        send(jet)
    jet.send(post_event(T0 + 10, DID, "last", "Acme Cloud last"))
    outcomes = poll_until(pipeline, len(want) + 1)
    assert stored(store) == sorted(want + [f"{DID}/last"]), name
    assert sum(o.dropped.get("malformed", 0) for o in outcomes) == malformed
    assert all(o.failure is None for o in outcomes)


def test_a_hostile_post_is_escaped_in_slack(tmp_path, jet, slack):
    pipeline, store, _ = pipeline_for(tmp_path, jet, slack)
    start(pipeline, jet)
    jet.send(post_event(T0 + 1, DID, "h1", "<!channel> Acme Cloud is broken, support ignores me <https://evil|click>"))
    poll_until(pipeline, 1)
    pipeline.process(flush_all=True)
    [message] = slack.posted("#acme-alerts")
    body = json.dumps(message)
    assert "<!channel>" not in body and "&lt;!channel&gt;" in body and "<https://evil|click>" not in body


def test_a_delete_marks_the_stored_mention_and_its_alert_is_not_sent_again(tmp_path, jet, slack):
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


def test_a_cursor_older_than_the_replay_window_is_a_gap(jet):
    settings = Settings(slack={"token": "xoxb-x"}, bluesky={"jetstream_url": jet.url, "replay_window": "1h"},
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


def test_validate_warns_about_team_handles_bad_handles_and_a_second_source(tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:1", [{"type": "bluesky", "name": "sky"}],
                         bluesky={"jetstream_url": "ws://127.0.0.1:1/subscribe"})
    acme = config["brands"]["acme"]
    acme["handles"] = ["@acmecloud", "@acme_cloud.bsky.social"]
    acme["team"] = {"bluesky": ["did:plc:acmeteam", "acme.bsky.social", "not a handle"]}
    config["brands"]["beta"] = {"names": ["Beta"], "slack_channel": "#b",
                                "sources": [{"type": "bluesky", "name": "sky2"}]}
    _, warnings = load_settings(write_config(tmp_path, config))
    found = {(w.path, w.value): w.expected for w in warnings}
    assert "write the account's DID" in found[("brands.acme.team.bluesky", "'acme.bsky.social'")]
    assert "a DID" in found[("brands.acme.team.bluesky", "'not a handle'")]
    assert ("brands.acme.team.bluesky", "'did:plc:acmeteam'") not in found
    assert "domain name" in found[("brands.acme.handles", "'@acme_cloud.bsky.social'")]
    assert "one `type: bluesky` source" in found[("brands.*.sources", "acme/sky, beta/sky2")]


def test_a_jetstream_url_must_be_a_websocket():
    with pytest.raises(ValueError, match="ws:// or wss://"):
        Settings(slack={"token": "xoxb-x"}, bluesky={"jetstream_url": "https://jetstream.example"}, brands={})


def test_a_stream_down_for_longer_than_the_stall_timeout_fails_the_poll(jet):
    from monitor.core.failures import FailureKind, SourceFailure

    settings = Settings(slack={"token": "xoxb-x"},
                        bluesky={"jetstream_url": "ws://127.0.0.1:9/subscribe", "stall_timeout": "1s",
                                 "connect_timeout": "1s", "reconnect_min": "1s"},
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


def test_a_full_buffer_pauses_the_reader_until_drained_then_it_resumes_without_loss(tmp_path, jet, slack):
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
