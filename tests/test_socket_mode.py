"""Slack actions over Socket Mode: the real SocketModeClient against the emulator's websocket server."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from alerts.slack import SlackSender, make_client
from alerts.socket_mode import SocketMode, action_from_block_actions
from emulators.server import wait_until
from emulators.slack import channel_id_for
from monitor.config import load_settings
from monitor.core.records import Match, Post
from monitor.core.records import NewAlert, NewNotification
from monitor.store import Store
from tests.support.actors import EVE, KIM, LABELS, SAM
from tests.support.config import alert_payload, config_dict, write_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
APP_TOKEN = "xapp-1-A12345-secret-77c1"
CHANNEL = channel_id_for("#acme-alerts")


class World:
    """A store with alerted mentions posted to the emulator, and a Socket Mode connection to it."""

    def __init__(self, tmp_path, slack, **slack_overrides):
        config = config_dict(tmp_path, slack.api_url, [], slack={"app_token": APP_TOKEN, **slack_overrides})
        config["brands"]["acme"]["sources"] = [{"type": "feed", "name": "blog", "url": "http://127.0.0.1:9/feed"}]
        self.settings, _ = load_settings(write_config(tmp_path, config))
        self.store = Store(self.settings.storage.url)
        self.clock = [NOW]
        self.slack = slack
        self.sender = SlackSender(make_client(self.settings.slack), self.store, lambda: self.clock[0])
        self.changes = 0
        self.socket: SocketMode | None = None

    def alert(self, n: int) -> tuple[int, int]:
        """A complaint mention carried by its own message, sent to Slack: (mention id, alert id)."""
        post = Post("feed", f"p{n}", f"Acme broke my build #{n}", url=f"https://blog.example.com/{n}",
                    author="mallory", created_at=NOW)
        (mention_id,) = self.store.commit_poll("acme/blog", [(post, Match({"acme": []}))], None, Counter(), NOW)
        self.store.save_labels([(mention_id, LABELS)], NOW)
        payload = alert_payload(mention_id, post.text, LABELS, url=post.url, author=post.author)
        alert = NewAlert(f"mention:{mention_id}", "mention", mention_id, "acme", "#acme-alerts", payload)
        self.store.commit_routed([mention_id], [NewNotification(mention_id, "acme", "root", "#acme-alerts",
                                                                f"g{n}", False, "queued", alert=alert)], [], NOW)
        assert self.sender.deliver().sent == 1
        return mention_id, self.alert_id(mention_id)

    def alert_id(self, mention_id: int) -> int:
        return self.store.message_of(mention_id)

    def ts_of(self, alert_id: int) -> str:
        return self.store.slack_targets([alert_id])[alert_id][2]

    def connect(self) -> SocketMode:
        def changed() -> None:
            self.changes += 1
        self.socket = SocketMode(lambda: self.settings, self.store, lambda: self.clock[0], changed,
                                 ping_interval=0.5).start()
        assert self.slack.socket_mode().wait_connections(1)
        return self.socket

    def wait_processed(self, count: int) -> None:
        assert wait_until(lambda: self.socket.handler.processed >= count, timeout=20), \
            f"{self.socket.handler.processed} of {count} envelopes handled"

    def close(self) -> None:
        if self.socket is not None:
            self.socket.stop()
        self.store.close()


@pytest.fixture
def world(database, tmp_path, slack):
    slack.add_channel("#acme-alerts", members=[SAM, KIM])
    w = World(tmp_path, slack)
    yield w
    w.close()


def status_text(slack, channel_id: str, ts: str) -> str:
    message = slack.message(channel_id, ts)
    return " ".join(e.get("text", "") for b in message["blocks"] if b.get("type") == "context"
                    for e in b.get("elements", []))


def test_handled_button_updates_the_message_once_despite_redelivery_and_double_clicks(database, world, slack):
    mention_id, alert_id = world.alert(1)
    ts = world.ts_of(alert_id)
    world.connect()
    server = slack.socket_mode()
    first = server.block_action(SAM, "sam", CHANNEL, ts, "handled", str(mention_id), action_ts="1700000000.000100")
    assert server.wait_acked(first)
    world.wait_processed(1)
    # Slack redelivers an envelope it thinks was not acked; the person clicks again.
    server.block_action(SAM, "sam", CHANNEL, ts, "handled", str(mention_id), action_ts="1700000000.000100",
                        retry_attempt=1)
    server.block_action(KIM, "kim", CHANNEL, ts, "handled", str(mention_id), action_ts="1700000000.000200")
    world.wait_processed(3)
    assert world.sender.deliver().sent == 1
    assert len(slack.updates()) == 1
    assert "handled by @sam" in status_text(slack, CHANNEL, ts)
    assert not any(b["type"] == "actions" for b in slack.message(CHANNEL, ts)["blocks"])
    assert world.store.reply_clock(mention_id).state == "handled"
    refusals = [e for e in slack.ephemerals if e["user"] == KIM]
    assert len(refusals) == 1 and "already handled by @sam" in refusals[0]["text"]
    assert [e["user"] for e in slack.ephemerals] == [KIM]  # the redelivery told nobody anything
    assert wait_until(lambda: len(server.acks) == 3) and world.changes == 1


def test_people_outside_the_actors_get_an_ephemeral_refusal_and_nothing_changes(database, world, slack):
    mention_id, alert_id = world.alert(1)
    world.connect()
    slack.socket_mode().block_action(EVE, "eve", CHANNEL, world.ts_of(alert_id), "not_relevant", str(mention_id))
    world.wait_processed(1)
    (refusal,) = slack.ephemerals
    assert refusal["user"] == EVE and refusal["text"] == f"Only members of <#{CHANNEL}> can act on alerts."
    assert world.store.reply_clock(mention_id) is None
    assert world.store.outbox(10) == []


def test_user_group_actors_are_read_once_and_cached(database, tmp_path, slack):
    slack.add_channel("#acme-alerts", members=[SAM, KIM, EVE])
    slack.usergroups["S0SUPPORT"] = [KIM]
    w = World(tmp_path, slack, actors={"usergroup": "S0SUPPORT"})
    try:
        first, a1 = w.alert(1)
        second, a2 = w.alert(2)
        w.connect()
        server = slack.socket_mode()
        server.block_action(EVE, "eve", CHANNEL, w.ts_of(a1), "snooze_1h", str(first))
        server.block_action(KIM, "kim", CHANNEL, w.ts_of(a2), "snooze_1h", str(second))
        w.wait_processed(2)
        assert [e["user"] for e in slack.ephemerals] == [EVE]
        assert "S0SUPPORT" in slack.ephemerals[0]["text"]
        assert w.store.reply_clock(first) is None
        clock = w.store.reply_clock(second)
        assert clock.state == "snoozed" and clock.snoozed_until == NOW + timedelta(hours=1)
        assert sum(1 for c in slack.calls if c[0] == "usergroups.users.list") == 1
    finally:
        w.close()


def test_check_mark_reaction_on_our_message_marks_its_mentions_handled_once(database, world, slack):
    mention_id, alert_id = world.alert(1)
    slack.users[KIM] = "kim"
    ts = world.ts_of(alert_id)
    world.connect()
    server = slack.socket_mode()
    server.reaction_added(KIM, CHANNEL, ts, "white_check_mark", event_id="Ev0001")
    server.reaction_added(KIM, CHANNEL, ts, "white_check_mark", event_id="Ev0001", retry_attempt=1)
    server.reaction_added(KIM, CHANNEL, ts, "tada", event_id="Ev0002")
    server.reaction_added(KIM, CHANNEL, "1.000000", "heavy_check_mark", event_id="Ev0003")  # not our message
    world.wait_processed(4)
    clock = world.store.reply_clock(mention_id)
    assert clock.state == "handled" and clock.closed_by == "@kim" and clock.closed_via == "reaction"
    assert world.sender.deliver().sent == 1
    assert "handled by @kim" in status_text(slack, CHANNEL, ts)
    assert slack.ephemerals == []


def test_wrong_label_opens_a_chooser_whose_choice_is_stored_as_a_training_example(database, world, slack):
    mention_id, alert_id = world.alert(1)
    ts = world.ts_of(alert_id)
    world.connect()
    server = slack.socket_mode()
    server.block_action(SAM, "sam", CHANNEL, ts, "wrong_label", str(mention_id))
    world.wait_processed(1)
    (chooser,) = slack.ephemerals
    selects = chooser["blocks"][1]["elements"]
    assert [s["action_id"] for s in selects] == ["relabel_sentiment", "relabel_intent"]
    option = next(o["value"] for o in selects[1]["options"] if o["value"].endswith(":question"))
    server.block_action(SAM, "sam", CHANNEL, ts, "relabel_intent", "", selected=option)
    world.wait_processed(2)
    (feedback,) = list(world.store.label_feedback())
    assert feedback["mention_id"] == mention_id and feedback["intent"] == "question"
    assert feedback["labelled_by"] == "@sam"
    assert world.sender.deliver().sent == 1
    assert "complaint → question" in status_text(slack, CHANNEL, ts)


def test_actions_after_a_dropped_connection_and_a_disconnect_work_once(database, world, slack, caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    mentions = [world.alert(n) for n in range(3)]
    world.connect()
    server = slack.socket_mode()
    server.drop()
    assert server.wait_connections(2), "the client reconnects after the socket is dropped"
    mention_id, alert_id = mentions[0]
    server.block_action(SAM, "sam", CHANNEL, world.ts_of(alert_id), "handled", str(mention_id),
                        action_ts="1700000001.000001")
    world.wait_processed(1)
    server.disconnect()
    assert server.wait_connections(3), "the client opens a new connection when Slack says disconnect"
    # Slack redelivers what it sent on the old connection, then the next click arrives.
    server.block_action(SAM, "sam", CHANNEL, world.ts_of(alert_id), "handled", str(mention_id),
                        action_ts="1700000001.000001", retry_attempt=1)
    mention_id2, alert_id2 = mentions[1]
    server.block_action(SAM, "sam", CHANNEL, world.ts_of(alert_id2), "handled", str(mention_id2))
    world.wait_processed(3)
    assert world.sender.deliver().sent == 2
    assert Counter(ts for ts, _ in slack.updates()) == {world.ts_of(alert_id): 1, world.ts_of(alert_id2): 1}
    assert world.store.reply_clock(mentions[2][0]) is None
    lines = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.alerts.socket_mode"]
    assert [line for line in lines if line.startswith("Slack Socket Mode") and "lost" not in line] == \
        ["Slack Socket Mode connected", "Slack Socket Mode reconnected", "Slack Socket Mode reconnected"]
    assert sum("connection lost" in line for line in lines) <= 1  # once per lost connection, not per attempt
    assert all(APP_TOKEN not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("payload, expected", [
    ({"actions": [{"action_id": "handled", "value": "12", "action_ts": "1.2"}], "user": {"id": "U1"},
      "channel": {"id": "C1"}}, ("handled", (12,), None)),
    ({"actions": [{"action_id": "relabel_sentiment", "selected_option": {"value": "7:positive"},
                   "action_ts": "1.3"}], "user": {"id": "U1"}, "container": {"channel_id": "C1"}},
     ("relabel_sentiment", (7,), "positive")),
    ({"actions": [{"action_id": "handled", "value": "12; DROP", "action_ts": "1.2"}], "user": {"id": "U1"}}, None),
    ({"actions": [{"action_id": "someone_elses_button", "value": "1"}], "user": {"id": "U1"}}, None),
    ({"actions": []}, None),
])
def test_block_action_payloads_are_read_strictly(payload, expected):
    action = action_from_block_actions(payload)
    assert (action and (action.name, action.mention_ids, action.choice)) == expected


def test_the_app_token_is_required_to_be_an_app_token(slack):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
    with pytest.raises(SlackApiError) as refused:
        WebClient(base_url=slack.api_url).apps_connections_open(app_token="xoxb-bot-token")
    assert refused.value.response["error"] == "not_allowed_token_type"


def test_a_reload_that_adds_an_app_token_opens_socket_mode(database, tmp_path, slack):
    from apscheduler.schedulers.background import BackgroundScheduler

    from monitor.daemon import Daemon

    config = config_dict(tmp_path, slack.api_url, [])
    path = write_config(tmp_path, config)
    daemon = Daemon(str(path), load_settings(path)[0])
    daemon.scheduler = BackgroundScheduler(timezone=timezone.utc)  # as run() makes it; not started here
    assert daemon.socket_mode is None, "no app token: actions come from the CLI"
    config["slack"]["app_token"] = APP_TOKEN
    write_config(tmp_path, config)
    daemon.reload()
    try:
        assert daemon.socket_mode is not None and slack.socket_mode().wait_connections(1)
    finally:
        daemon.socket_mode.stop()
        daemon.store.close()


def test_a_dropped_connection_is_regained_with_backoff_and_logged_once_each_way(world, slack, caplog):
    from emulators.server import Reply

    caplog.set_level(logging.INFO, logger="mentionwatch")
    mention_id, alert_id = world.alert(1)
    first = 0.2
    world.socket = SocketMode(lambda: world.settings, world.store, lambda: world.clock[0],
                              ping_interval=0.5, first_backoff=timedelta(seconds=first)).start()
    server = slack.socket_mode()
    assert server.wait_connections(1)
    before = len(slack.calls)
    slack.fail("apps.connections.open", Reply.json({"ok": False, "error": "internal_error"}), times=4)
    server.drop()
    assert server.wait_connections(2, timeout=30), "the connection comes back once Slack lets it"
    opens = [at for (method, _, _), at in zip(slack.calls[before:], slack.called_at[before:])
             if method == "apps.connections.open"]
    assert len(opens) == 5, "four refused attempts and the one that worked: no hammering"
    gaps = [b - a for a, b in zip(opens, opens[1:])]
    for n, gap in enumerate(gaps):  # doubling from `first`, with at most 20 % jitter either way
        assert gap >= 0.8 * first * 2 ** n, gaps
    server.block_action(SAM, "sam", CHANNEL, world.ts_of(alert_id), "handled", str(mention_id))
    world.wait_processed(1)
    assert world.store.reply_clock(mention_id).state == "handled"
    ours = [r for r in caplog.records if r.name == "mentionwatch.alerts.socket_mode" and r.levelno >= logging.INFO]
    assert [r.getMessage() for r in ours] == ["Slack Socket Mode connected",
                                              "Slack Socket Mode connection lost; reconnecting",
                                              "Slack Socket Mode reconnected"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no error per failed attempt"


@pytest.mark.parametrize("failures, low, high", [(1, 0.8, 1.2), (2, 1.6, 2.4), (5, 12.8, 19.2), (9, 204.8, 307.2),
                                                 (10, 240, 360), (10_000, 240, 360)])
def test_reconnect_waits_double_with_jitter_up_to_five_minutes(failures, low, high):
    import random

    from alerts.socket_mode import FIRST_BACKOFF, MAX_BACKOFF
    from monitor.health import backoff

    waits = {backoff(FIRST_BACKOFF, failures, random.Random(seed), MAX_BACKOFF).total_seconds() for seed in range(20)}
    assert all(low <= wait <= high for wait in waits) and len(waits) > 1, "jittered, within bounds"


def test_a_flapping_connection_backs_off_like_a_refused_one(world, slack):
    first = 1.0  # noticing a dead socket takes about 5 pings (1 s here); the waits outgrow that
    world.socket = SocketMode(lambda: world.settings, world.store, lambda: world.clock[0],
                              ping_interval=0.2, first_backoff=timedelta(seconds=first)).start()
    server = slack.socket_mode()
    assert server.wait_connections(1)
    for n in range(1, 4):  # each connection dies right after it opened
        before = len(slack.calls)
        dropped = time.monotonic()
        server.drop()
        assert server.wait_connections(n + 1, timeout=30)
        (opened,) = [at for (method, _, _), at in zip(slack.calls[before:], slack.called_at[before:])
                     if method == "apps.connections.open"]
        assert opened - dropped >= 0.8 * first * 2 ** (n - 1), f"reconnect {n} waited its backoff"
