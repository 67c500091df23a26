"""Mastodon hashtag timelines through real requests against instance emulators, and the pipeline."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from connectors import mastodon_stream
from connectors.mastodon import Budgets, MastodonConnector, instance_url
from emulators.mastodon import MastodonEmulator, status
from emulators.server import wait_until
from monitor.config import Settings, load_settings
from tests.support.config import config_dict, pipeline_with_clock, write_config

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc)


TOKEN = "mastodon-token-7f3e9a"


@pytest.fixture
def instance():
    with MastodonEmulator(token=TOKEN) as emulator:
        yield emulator
        mastodon_stream.close_all()


@pytest.fixture
def other():
    with MastodonEmulator() as emulator:
        yield emulator


def connector(instances: list[str], budgets: Budgets | None = None, source: dict | None = None, clock=None,
              **platform) -> MastodonConnector:
    settings = Settings(slack={"token": "xoxb-x"}, mastodon={"connect_timeout": 1, "read_timeout": 1, **platform},
                        brands={"acme": {"names": ["Acme Cloud"], "hashtags": ["#acmecloud"], "slack_channel": "#a",
                                         "team": {"mastodon": ["@support@acme.social"]},
                                         "sources": [{"type": "mastodon", "name": "m", "instances": instances,
                                                      **(source or {})}]}})
    return MastodonConnector(settings.brands["acme"].sources[0], settings, clock=clock or (lambda: NOW),
                             budgets=budgets or Budgets())


def ids(result) -> list[str]:
    return [p.extra["id"] for p in result.posts]


def test_new_statuses_page_forward_from_the_cursor_and_html_becomes_text(instance):
    instance.add("acmecloud", *(status(i, f"<p>Acme Cloud note {i} &amp; more</p>", tags=("acmecloud",))
                                for i in range(1, 4)))
    mc = connector([instance.url])
    first = mc.fetch(None)
    assert ids(first) == ["1", "2", "3"] and first.posts[0].text == "Acme Cloud note 1 & more"
    assert first.posts[0].author == "@alice@mastodon.example" and first.posts[0].reach == 10
    instance.add("acmecloud", *(status(i, f"<p>Acme Cloud later {i}</p>") for i in range(4, 50)))
    second = mc.fetch(first.cursor)
    assert ids(second) == [str(i) for i in range(4, 50)]          # two pages of 40, forward, none skipped
    assert [r.get("min_id") for r in instance.requests[1:]] == ["3", "43"]
    assert mc.fetch(second.cursor).posts == []


def test_a_boost_and_the_same_post_on_two_instances_are_stored_once(instance, other, tmp_path, slack):
    original = status(7, "<p>Acme Cloud is down for us</p>", acct="bob@far.example", host="far.example")
    instance.add("acmecloud", original, {**status(8, "", acct="carol"), "reblog": original})
    other.add("acmecloud", {**status(900, "<p>Acme Cloud is down for us</p>", acct="bob@far.example",
                                     host="far.example"), "uri": original["uri"]})
    config = config_dict(tmp_path, slack.api_url, [{"type": "mastodon", "name": "m", "interval": "1m",
                                                    "instances": [instance.url, other.url]}],
                         mastodon={"connect_timeout": "1s", "read_timeout": "1s"})
    config["brands"]["acme"]["hashtags"] = ["#acmecloud"]
    pipeline, store, _ = pipeline_with_clock(tmp_path, config, NOW)
    outcome = pipeline.poll("acme/m")
    assert outcome.failure is None
    assert [r["external_id"] for r in store.export_rows(None)] == [original["uri"]]


def test_rate_limit_headers_pause_only_that_instance(instance, other):
    instance.remaining = 11          # reserve 10: one more request, then it waits for its reset
    instance.add("acmecloud", status(1, "<p>Acme Cloud one</p>"))
    other.add("acmecloud", status(2, "<p>Acme Cloud two</p>"))
    budgets = Budgets()
    mc = connector([instance.url, other.url], budgets)
    first = mc.fetch(None)
    assert sorted(ids(first)) == ["1", "2"]
    instance.add("acmecloud", status(3, "<p>Acme Cloud three</p>"))
    other.add("acmecloud", status(4, "<p>Acme Cloud four</p>"))
    second = mc.fetch(first.cursor)
    assert ids(second) == ["4"] and len(instance.requests) == 1   # not called again before its reset
    assert second.cursor["timelines"][f"{instance.url}#acmecloud"] == "1"   # picked up after the reset


def test_a_429_pauses_the_instance_without_failing_the_poll(instance, other):
    instance.remaining = 0
    other.add("acmecloud", status(2, "<p>Acme Cloud two</p>"))
    mc = connector([instance.url, other.url])
    result = mc.fetch(None)
    assert ids(result) == ["2"] and result.cursor["timelines"][f"{instance.url}#acmecloud"] is None
    mc.fetch(result.cursor)
    assert len(instance.requests) == 1


def test_malformed_statuses_are_judged_alone_and_team_posts_marked(instance):
    instance.add("acmecloud", {"id": "x"}, {**status(5, "<p>Acme Cloud</p>"), "content": None},
                 status(6, "<p>We are on it, Acme Cloud support</p>", acct="support@acme.social"))
    result = connector([instance.url]).fetch(None)
    assert ids(result) == ["6"] and len(result.skipped) == 2 and result.posts[0].extra["by_team"] is True


def test_a_hostile_status_is_plain_text_and_escaped_in_slack(instance, tmp_path, slack):
    instance.add("acmecloud", status(9, '<p>&lt;!channel&gt; Acme Cloud is broken, support ignores me '
                                        '<a href="https://evil">&lt;https://evil|click&gt;</a></p>'))
    config = config_dict(tmp_path, slack.api_url, [{"type": "mastodon", "name": "m", "interval": "1m",
                                                    "instances": [instance.url], "hashtags": ["acmecloud"]}],
                         mastodon={"connect_timeout": "1s", "read_timeout": "1s"})
    pipeline, store, _ = pipeline_with_clock(tmp_path, config, NOW)
    pipeline.poll("acme/m")
    [row] = store.export_rows(None)
    assert row["text"].startswith("<!channel> Acme Cloud is broken")
    pipeline.process(flush_all=True)
    body = json.dumps(slack.posted("#acme-alerts"))
    assert "Acme Cloud is broken" in body and "<!channel>" not in body and "<https://evil|click>" not in body


@pytest.mark.parametrize("value, expected", [("mastodon.social", "https://mastodon.social"),
                                             ("https://fosstodon.org/", "https://fosstodon.org")])
def test_instances_are_written_as_hosts_or_urls(value, expected):
    assert instance_url(value) == expected


def test_validate_names_a_bad_instance_a_source_without_hashtags_and_a_team_account_without_instance(tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:1", [{"type": "mastodon", "name": "m",
                                                           "instances": ["not an instance"]}])
    with pytest.raises(Exception, match="instance host name"):
        load_settings(write_config(tmp_path, config))
    config = config_dict(tmp_path, "http://127.0.0.1:1", [{"type": "mastodon", "name": "m",
                                                           "instances": ["mastodon.social"]}])
    with pytest.raises(Exception, match="no hashtags to read"):
        load_settings(write_config(tmp_path, config))
    config["brands"]["acme"]["hashtags"] = ["#acmecloud"]
    config["brands"]["acme"]["team"] = {"mastodon": ["@support"]}
    _, warnings = load_settings(write_config(tmp_path, config))
    assert any(w.path == "brands.acme.team.mastodon" and "@user@instance" in w.expected for w in warnings)


def test_first_poll_keeps_only_the_lookback(instance):
    instance.add("acmecloud", status(1, "<p>Acme Cloud old</p>", created=NOW - timedelta(days=3)),
                 status(2, "<p>Acme Cloud new</p>", created=NOW - timedelta(hours=1)))
    result = connector([instance.url]).fetch(None)
    assert ids(result) == ["2"] and len(result.gaps) == 1


def test_an_instance_added_later_starts_with_recent_posts_only(instance, other):
    instance.add("acmecloud", status(1, "<p>Acme Cloud one</p>", created=NOW - timedelta(hours=1)))
    first = connector([instance.url]).fetch(None)
    other.add("acmecloud", status(2, "<p>Acme Cloud old</p>", created=NOW - timedelta(days=5)),
              status(3, "<p>Acme Cloud new</p>", created=NOW - timedelta(minutes=5)))
    later = connector([instance.url, other.url]).fetch(first.cursor)
    assert ids(later) == ["3"] and len(later.gaps) == 1 and other.url in later.gaps[0].reason


# --- search, mention notifications, team replies, streaming ---------------------------------------

def test_search_finds_the_brands_names_with_the_token_and_pages_by_offset_from_the_cursor(instance, caplog):
    instance.searchable += [status(i, f"<p>Acme Cloud search hit {i}</p>", created=NOW - timedelta(minutes=i))
                            for i in range(1, 6)]
    mc = connector([instance.url], source={"hashtags": ["none"], "search": True,
                                           "access_tokens": {instance.url: TOKEN}}, page_size=2)
    first = mc.fetch(None)
    assert sorted(ids(first)) == ["1", "2", "3", "4", "5"]
    searches = [q for path, q in instance.calls if path == "/api/v2/search"]
    assert [q.get("offset") for q in searches] == ["0", "2", "4"] and searches[0]["type"] == "statuses"
    assert searches[0]["q"] == '"Acme Cloud"'
    instance.searchable.append(status(9, "<p>Acme Cloud newer</p>", created=NOW))
    second = mc.fetch(first.cursor)
    assert ids(second) == ["9"] and [q for p, q in instance.calls if p == "/api/v2/search"][-1]["min_id"] == "5"
    assert TOKEN not in caplog.text


def test_mention_notifications_of_the_brand_account_are_read_forward(instance):
    for nid in (1, 2):
        instance.mention(100 + nid, status(nid, f"<p>@acme is Acme Cloud down? {nid}</p>", acct="dana@far.example"))
    mc = connector([instance.url], source={"hashtags": ["none"], "notifications": True,
                                           "access_tokens": {instance.url: TOKEN}})
    first = mc.fetch(None)
    assert ids(first) == ["1", "2"] and first.posts[0].author == "@dana@far.example"
    instance.mention(103, status(3, "<p>@acme thanks!</p>", acct="eve@far.example"))
    assert ids(mc.fetch(first.cursor)) == ["3"]
    reads = [q for path, q in instance.calls if path == "/api/v1/notifications"]
    assert reads[-1]["min_id"] == "102" and reads[-1]["types[]"] == "mention"


def test_search_and_notifications_need_a_token_for_a_listed_instance(tmp_path):
    for source, error in [({"search": True}, "need the brand account's token"),
                          ({"access_tokens": {"other.example": "t"}}, "not one of this source's instances")]:
        config = config_dict(tmp_path, "http://127.0.0.1:1", [{"type": "mastodon", "name": "m", "hashtags": ["a"],
                                                               "instances": ["mastodon.social"], **source}])
        with pytest.raises(Exception, match=error):
            load_settings(write_config(tmp_path, config))


def test_a_team_reply_in_the_status_context_answers_the_mention_before_it_alerts(instance, tmp_path, slack):
    asked = status(10, "<p>Acme Cloud billing charged me twice, can anyone help?</p>", acct="bob@far.example",
                   tags=("acmecloud",), created=NOW - timedelta(minutes=5))   # news, not backfill
    instance.add("acmecloud", asked)
    instance.replies.append(status(11, "<p>@bob sorry, refunded!</p>", acct="support@acme.social",
                                   created=NOW - timedelta(minutes=3), in_reply_to=10))
    config = config_dict(tmp_path, slack.api_url, [{"type": "mastodon", "name": "m", "interval": "1m",
                                                    "instances": [instance.url], "hashtags": ["acmecloud"]}],
                         mastodon={"connect_timeout": "1s", "read_timeout": "1s"})
    config["brands"]["acme"]["team"] = {"mastodon": ["@support@acme.social"]}
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, NOW)
    pipeline.poll("acme/m")
    [answer] = store.responses(store.mention_id("mastodon", asked["uri"]))
    assert answer["responder"] == "@support@acme.social" and answer["via"] == "mastodon"
    pipeline.process(flush_all=True)
    assert slack.posted("#acme-alerts") == []
    contexts = [p for p, _ in instance.calls if p.endswith("/context")]
    assert contexts == ["/api/v1/statuses/10/context"]


def test_a_waiting_mentions_context_is_read_again_only_after_the_recheck(instance):
    instance.add("acmecloud", status(20, "<p>Acme Cloud is down</p>", acct="bob@far.example"))
    now = [NOW]
    mc = connector([instance.url], clock=lambda: now[0])
    result = mc.fetch(None)
    assert mc.find_team_replies(result.posts) == []
    assert mc.find_team_replies(result.posts) == []
    instance.replies.append(status(21, "<p>on it</p>", acct="support@acme.social", in_reply_to=20,
                                   created=NOW + timedelta(minutes=1)))
    now[0] = NOW + timedelta(minutes=11)
    [reply] = mc.find_team_replies(result.posts)
    assert reply.responder == "@support@acme.social"
    assert len([p for p, _ in instance.calls if p.endswith("/context")]) == 2


def test_a_deleted_mentions_context_is_skipped_without_failing_the_poll(instance):
    from connectors.mastodon import status_to_post

    gone = status_to_post(status(30, "<p>Acme Cloud is down</p>", acct="carl@far.example"), instance.url, frozenset())
    assert connector([instance.url]).find_team_replies([gone]) == []   # the instance answers 404 for it
    assert [p for p, _ in instance.calls] == ["/api/v1/statuses/30/context"]


def fetch_until(mc: MastodonConnector, cursor: dict, seconds: float = 10.0):
    """Poll until something arrives (a pushed status reaches the buffer a moment after it is sent)."""
    deadline = time.monotonic() + seconds
    result = mc.fetch(cursor)
    while not result.posts and time.monotonic() < deadline:
        time.sleep(0.05)
        result = mc.fetch(cursor)
    return result


def test_an_instance_without_status_search_is_skipped_without_failing(instance):
    instance.has_search = False
    instance.add("acmecloud", status(1, "<p>Acme Cloud one</p>"))
    mc = connector([instance.url], source={"search": True, "access_tokens": {instance.url: TOKEN}})
    first = mc.fetch(None)
    assert ids(first) == ["1"]
    mc.fetch(first.cursor)
    assert len([p for p, _ in instance.calls if p == "/api/v2/search"]) == 1


def test_streamed_statuses_arrive_without_polling_and_a_dropped_stream_loses_nothing(instance):
    mc = connector([instance.url], source={"streaming": True})
    instance.add("acmecloud", status(1, "<p>Acme Cloud one</p>"))
    first = mc.fetch(None)
    socket = mastodon_stream.stream(instance.streaming_url, "acmecloud", None, 1.0)  # the one the poll started
    assert ids(first) == ["1"] and wait_until(lambda: socket.connected)
    # The client sees the handshake finish before the server's handler has run and subscribed it.
    assert wait_until(lambda: instance.stream_connects)
    assert instance.stream_connects[0]["stream"] == "hashtag" and instance.stream_connects[0]["tag"] == "acmecloud"
    assert instance.stream_connects[0]["authorization"] is None  # no token for this instance
    synced = mc.fetch(first.cursor)  # the REST read after the stream connected: from now on the stream serves
    instance.push("acmecloud", status(2, "<p>Acme Cloud two</p>"))
    rest_reads = len(instance.requests)
    streamed = fetch_until(mc, synced.cursor)
    assert ids(streamed) == ["2"] and len(instance.requests) == rest_reads, "taken from the stream, no REST read"
    instance.drop_streams()
    instance.push("acmecloud", status(3, "<p>Acme Cloud three, while the stream was down</p>"))
    assert wait_until(lambda: not socket.connected) and wait_until(lambda: socket.connected, timeout=10)
    instance.push("acmecloud", status(4, "<p>Acme Cloud four</p>"))
    after = mc.fetch(streamed.cursor)
    assert ids(after) == ["3", "4"] and len(instance.requests) == rest_reads + 1, "a reconnect reads REST once"
    assert mc.fetch(after.cursor).posts == []


def test_a_streaming_sources_position_is_its_newest_status_and_a_polling_source_has_none(instance):
    from connectors.mastodon import position

    streaming = connector([instance.url], source={"streaming": True})
    polling = connector([instance.url])
    instance.add("acmecloud", status(1, "<p>Acme Cloud one</p>", created=NOW - timedelta(minutes=3)))
    cursor = polling.fetch(None).cursor
    assert position(streaming.source, cursor) == NOW - timedelta(minutes=3)
    assert position(polling.source, cursor) is None


MASTODON_YAML = """\
slack: {{token: xoxb-validate-1234}}
brands:
  acme:
    names: [Acme Cloud]
    hashtags: ["#acmecloud"]
    slack_channel: "#acme"
    team: {{mastodon: [{team}]}}
    sources:
      - type: mastodon
        name: m
        instances:
          - mastodon.social
          - {instance}
        search: true
        access_tokens:
          mastodon.social: ${{MASTODON_TOKEN}}
"""


@pytest.mark.parametrize("instance, team, env, args, code, want", [
    ("fosstodon.org", "'@support@acme.social'", {"MASTODON_TOKEN": "tok-1"}, [], 0, "OK (1 brands, 1 sources)"),
    ("'not an instance'", "'@support@acme.social'", {"MASTODON_TOKEN": "tok-1"}, [], 78,
     ":13: brands.acme.sources.0.instances.1: 'not an instance': expected an instance host name"),
    ("ftp://fosstodon.org", "'@support@acme.social'", {"MASTODON_TOKEN": "tok-1"}, [], 78,
     ":13: brands.acme.sources.0.instances.1: 'ftp://fosstodon.org'"),
    ("fosstodon.org", "'@support@acme.social'", {}, [], 78,
     ":16: brands.acme.sources.0.access_tokens.mastodon.social: '${MASTODON_TOKEN}': environment variable "
     "MASTODON_TOKEN is not set"),
    ("fosstodon.org", "'@support@acme.social'", {"MASTODON_TOKEN": " "}, [], 78,
     ":16: brands.acme.sources.0.access_tokens.mastodon.social: <secret>: expected the account's access token"),
    ("fosstodon.org", "'@support@acme.social'", {}, ["--no-environment"], 0, "OK"),
    ("fosstodon.org", "'@support'", {"MASTODON_TOKEN": "tok-1"}, ["--strict"], 78,
     "warning: brands.acme.team.mastodon: '@support': an account with its instance"),
])
def test_validate_checks_instances_team_accounts_and_that_tokens_are_present(tmp_path, instance, team, env, args,
                                                                             code, want):
    from typer.testing import CliRunner

    from monitor import cli

    path = tmp_path / "config.yaml"
    path.write_text(MASTODON_YAML.format(instance=instance, team=team))
    result = CliRunner().invoke(cli.app, ["validate", str(path), *args], env={"MASTODON_TOKEN": None, **env})
    assert (result.exit_code, want in result.output) == (code, True), result.output
    assert "tok-1" not in result.output


def test_a_stream_that_cannot_connect_leaves_polling_to_carry_on(instance, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="mentionwatch")
    instance.streaming_url = "ws://127.0.0.1:9"   # what /api/v2/instance names; nothing listens there
    mc = connector([instance.url], source={"streaming": True})
    instance.add("acmecloud", status(1, "<p>Acme Cloud one</p>"))
    first = mc.fetch(None)
    instance.add("acmecloud", status(2, "<p>Acme Cloud two</p>"))
    second = mc.fetch(first.cursor)
    assert ids(first) == ["1"] and ids(second) == ["2"], "read over REST while the socket is down"
    assert [p for p, _ in instance.calls].count("/api/v1/timelines/tag/acmecloud") == 2
    warned = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.connectors.mastodon_stream"
              and r.levelname == "WARNING"]
    assert len(warned) <= 1 and all("polling covers it" in w for w in warned)


def test_a_stream_that_stays_open_but_stops_delivering_delays_statuses_never_loses_them(instance):
    now = [NOW]
    mc = connector([instance.url], source={"streaming": True}, clock=lambda: now[0])
    instance.add("acmecloud", status(1, "<p>Acme Cloud one</p>"))
    first = mc.fetch(None)
    socket = mastodon_stream.stream(instance.streaming_url, "acmecloud", None, 1.0)
    assert wait_until(lambda: socket.connected)
    synced = mc.fetch(first.cursor)        # REST after the socket connected: the stream serves from here
    instance.stalled = True                # still open, answering pings, delivering nothing
    instance.push("acmecloud", status(2, "<p>Acme Cloud two, never pushed</p>"))
    rest_reads = len(instance.requests)
    now[0] = NOW + timedelta(minutes=9)
    trusted = mc.fetch(synced.cursor)
    assert trusted.posts == [] and len(instance.requests) == rest_reads, "within stream_recheck: the stream"
    now[0] = NOW + timedelta(minutes=10)
    checked = mc.fetch(trusted.cursor)
    assert ids(checked) == ["2"] and len(instance.requests) == rest_reads + 1, "stream_recheck: REST finds it"
