"""Slack actions over Socket Mode: buttons, the wrong-label chooser and the ✅ reaction.

Every envelope is acknowledged at once (Slack redelivers what is not acked within 3 s), then keyed
in the `slack_events` table: a redelivery or a double click finds its key already there and is
dropped, so each action is acted on once. The key is recorded before acting; a crash in between
loses that click (the message still shows its buttons, so the person clicks again) rather than
acting twice. Only members of `slack.actors` (a user group, a channel, or by default the channel
the message is in) may act; others get an ephemeral refusal. The action itself (state, stored
change, the chat.update queued in the outbox) is `monitor.actions`' business.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from alerts.messages import ACTIONS, truncate
from alerts.slack import make_client, resolve_channel
from monitor.core.labels import INTENTS, SENTIMENTS
from monitor import actions
from monitor.health import backoff
from monitor.config import Settings
from monitor.store import Store
from monitor.core.logs import get_logger

log = get_logger(__name__)

DONE_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark"})
MEMBERS_TTL = 300.0  # seconds a user group's or channel's member list is trusted
# The builtin client notices a silently dead connection after 5 failed pings: 10 s at this interval.
PING_INTERVAL = 2.0
RELABEL_SENTIMENT, RELABEL_INTENT = "relabel_sentiment", "relabel_intent"
FIRST_BACKOFF = timedelta(seconds=1)  # the first wait after a failed (re)connect, doubled after each one
MAX_BACKOFF = timedelta(minutes=5)
STABLE = 30.0  # seconds a connection must last before its failures are forgotten


@dataclass(frozen=True)
class Action:
    """One thing a person asked for, as read from a Slack payload."""

    key: str  # what makes it unique across redeliveries
    name: str  # handled, snooze_1h, not_relevant, wrong_label, relabel_sentiment, relabel_intent
    mention_ids: tuple[int, ...]
    user_id: str
    channel_id: str
    via: str  # slack, reaction
    choice: str | None = None  # the label picked in the wrong-label chooser


def action_from_block_actions(payload: dict) -> Action | None:
    """A button press or chooser selection; None for anything that is not ours."""
    actions = payload.get("actions") or []
    if not actions:
        return None
    act = actions[0]
    action_id = act.get("action_id", "")
    user_id = (payload.get("user") or {}).get("id", "")
    channel_id = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id", "")
    if action_id in (RELABEL_SENTIMENT, RELABEL_INTENT):
        value = (act.get("selected_option") or {}).get("value", "")
        mention, _, choice = value.partition(":")
    elif action_id in ACTIONS:
        value = act.get("value") or ""
        mention, choice = value, None
    else:
        return None
    if not mention.isdigit():
        return None
    key = f"action:{act.get('action_ts', '')}:{user_id}:{action_id}:{value}"
    return Action(key, action_id, (int(mention),), user_id, channel_id, "slack", choice)


def chooser_blocks(mention_id: int) -> list[dict]:
    """The ephemeral wrong-label chooser: one select for sentiment, one for intent."""
    def select(action_id: str, placeholder: str, labels: tuple[str, ...]) -> dict:
        return {"type": "static_select", "action_id": action_id,
                "placeholder": {"type": "plain_text", "text": placeholder},
                "options": [{"text": {"type": "plain_text", "text": label}, "value": f"{mention_id}:{label}"}
                            for label in labels]}
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "Which label is right for this mention?"}},
            {"type": "actions", "block_id": f"relabel:{mention_id}",
             "elements": [select(RELABEL_SENTIMENT, "Sentiment", SENTIMENTS),
                          select(RELABEL_INTENT, "Intent", INTENTS)]}]


class SlackActions:
    """Turns Socket Mode envelopes into calls of `monitor.actions`, once each, for allowed people only."""

    def __init__(self, settings: Callable[[], Settings], store: Store, web: WebClient,
                 clock: Callable[[], datetime], on_change: Callable[[], None] = lambda: None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.store = store
        self.web = web
        self.clock = clock
        self.on_change = on_change
        self.monotonic = monotonic
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._members_lock = threading.Lock()
        self._names: dict[str, str] = {}
        self.processed = 0  # envelopes handled so far, for waiting on in tests and the demo
        self._count_lock = threading.Lock()

    def __call__(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        try:
            self.handle(request.type, request.payload)
        except Exception:  # noqa: BLE001 - one bad event must not stop the listener
            log.exception("Slack %s event could not be handled", request.type)
        finally:
            with self._count_lock:
                self.processed += 1

    def handle(self, kind: str, payload: dict) -> None:
        if kind == "interactive" and payload.get("type") == "block_actions":
            action = action_from_block_actions(payload)
            name = ((payload.get("user") or {}).get("username") or (payload.get("user") or {}).get("name"))
        elif kind == "events_api":
            action = self._reaction(payload)
            name = None
        else:
            return
        if action is None or not self.store.first_time(action.key, self.clock()):
            return
        refusal = self._refusal(action.user_id, action.channel_id)
        if refusal:
            self._tell(action, refusal)
            return
        self._act(action, self._display_name(action.user_id, name))

    def _reaction(self, payload: dict) -> Action | None:
        event = payload.get("event") or {}
        item = event.get("item") or {}
        if event.get("type") != "reaction_added" or event.get("reaction") not in DONE_REACTIONS \
                or item.get("type") != "message":
            return None
        alert_id = self.store.alert_at(item.get("channel", ""), item.get("ts", ""))
        if alert_id is None:
            return None
        mentions = tuple(self.store.mentions_of_alert(alert_id))
        if not mentions:
            return None
        key = f"event:{payload.get('event_id') or event.get('event_ts')}"
        return Action(key, "handled", mentions, event.get("user", ""), item["channel"], "reaction")

    def _act(self, action: Action, by: str) -> None:
        settings, now = self.settings(), self.clock()
        if action.name == "wrong_label":
            self.web.chat_postEphemeral(channel=action.channel_id, user=action.user_id,
                                        text="Pick the right sentiment or intent",
                                        blocks=chooser_blocks(action.mention_ids[0]))
            return
        changed = False
        for mention_id in action.mention_ids:
            if action.name == "handled":
                result = actions.mark_handled(self.store, settings, mention_id, by, action.via, now)
            elif action.name == "snooze_1h":
                result = actions.snooze(self.store, settings, mention_id, by, action.via, now,
                                        duration=timedelta(hours=1))
            elif action.name == "not_relevant":
                result = actions.not_relevant(self.store, settings, mention_id, by, action.via, now)
            elif action.choice in (SENTIMENTS if action.name == RELABEL_SENTIMENT else INTENTS):
                field = "sentiment" if action.name == RELABEL_SENTIMENT else "intent"
                result = actions.wrong_label(self.store, settings, mention_id, by, action.via, now,
                                             **{field: action.choice})
            else:
                return
            changed |= result.ok
            if not result.ok and action.via == "slack":
                self._tell(action, result.message)
        log.debug("%s: %s on mention(s) %s by %s", action.via, action.name, ",".join(map(str, action.mention_ids)),
                  action.user_id, extra={"mention_id": action.mention_ids[0]})
        if changed:
            self.on_change()

    def _tell(self, action: Action, text: str) -> None:
        try:
            self.web.chat_postEphemeral(channel=action.channel_id, user=action.user_id, text=text)
        except SlackApiError as exc:
            log.warning("could not tell %s in %s: %s", action.user_id, action.channel_id,
                        exc.response.get("error"))

    # --- who may act -----------------------------------------------------------------------------

    def _refusal(self, user_id: str, channel_id: str) -> str | None:
        """None if the user may act; otherwise the refusal to show them."""
        actors = self.settings().slack.actors
        if actors.usergroup:
            if user_id in self._cached(f"group:{actors.usergroup}", lambda: self.web.usergroups_users_list(
                    usergroup=actors.usergroup).get("users", [])):
                return None
            return f"Only members of the user group {actors.usergroup} can act on alerts."  # named, not pinged
        where = channel_id
        if actors.channel:
            where = resolve_channel(self.web, self.store, actors.channel) or ""
        if user_id in self._cached(f"channel:{where}", lambda: self._channel_members(where)):
            return None
        return f"Only members of <#{where}> can act on alerts."

    def _cached(self, key: str, fetch: Callable[[], list[str]]) -> frozenset[str]:
        """Members of a group or channel, read once per MEMBERS_TTL even when clicks come at once."""
        with self._members_lock:
            now = self.monotonic()
            hit = self._members.get(key)
            if hit and now - hit[0] < MEMBERS_TTL:
                return hit[1]
            try:
                members = frozenset(fetch())
            except SlackApiError as exc:
                log.warning("could not read who may act (%s): %s", key, exc.response.get("error"))
                return hit[1] if hit else frozenset()
            self._members[key] = (now, members)
            return members

    def _channel_members(self, channel_id: str) -> list[str]:
        return [member for page in self.web.conversations_members(channel=channel_id, limit=1000)
                for member in page.get("members", [])]

    def _display_name(self, user_id: str, name: str | None) -> str:
        """"@name" for status lines. Slack's control characters are removed rather than escaped: the
        name is stored, escaped where messages are built, and also echoed in ephemeral replies."""
        if not name:
            name = self._names.get(user_id)
        if not name:
            try:
                user = self.web.users_info(user=user_id).get("user") or {}
                name = (user.get("profile") or {}).get("display_name") or user.get("name") or user_id
            except SlackApiError:
                name = user_id
            self._names[user_id] = name
        return "@" + truncate(re.sub(r"[<>&@]", "", name), 80)


class SocketMode:
    """The daemon's Socket Mode connection. The SDK notices a dead socket (pings) and follows Slack's
    `disconnect` requests; every other reconnection is ours, with exponential backoff and jitter, so a
    failing `apps.connections.open` is asked ever more rarely instead of every ping interval. A lost
    connection is logged once, and once when it is back."""

    def __init__(self, settings: Callable[[], Settings], store: Store, clock: Callable[[], datetime],
                 on_change: Callable[[], None] = lambda: None, ping_interval: float = PING_INTERVAL,
                 first_backoff: timedelta = FIRST_BACKOFF, rng: random.Random | None = None):
        cfg = settings().slack
        web = make_client(cfg)
        self.handler = SlackActions(settings, store, web, clock, on_change)
        sdk_log = log.getChild("sdk")
        if not log.isEnabledFor(logging.DEBUG):
            # The SDK logs every session start and every failed attempt; our `_state` lines say the
            # same once per change.
            sdk_log.setLevel(logging.CRITICAL)
        self.client = SocketModeClient(app_token=cfg.app_token.get_secret_value(), web_client=web,
                                       logger=sdk_log, ping_interval=ping_interval, auto_reconnect_enabled=False)
        self.client.socket_mode_request_listeners.append(self.handler)
        self.client.on_message_listeners.append(self._on_message)
        self.watch_interval = min(ping_interval, 1.0)
        self.first_backoff = first_backoff
        self.rng = rng or random.Random()
        self.connected: bool | None = None
        self.sessions = 0
        self._state_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="socket-mode-connect", daemon=True)

    def start(self) -> "SocketMode":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.client.close()

    def _supervise(self) -> None:
        """Connect, watch the connection, and reconnect after each loss with backoff and jitter. A
        connection that drops within STABLE of opening counts as a failure too, so a flapping one backs
        off like a refused one."""
        failures, since = 0, None
        while not self._stopped.is_set():
            if self.client.is_connected():
                since = since if since is not None else time.monotonic()
                if time.monotonic() - since >= STABLE:
                    failures = 0
                self._stopped.wait(self.watch_interval)
                continue
            if self.connected:
                self._state(False, "connection lost; reconnecting")
            if since is not None and time.monotonic() - since < STABLE:
                failures += 1
                self._stopped.wait(backoff(self.first_backoff, failures, self.rng, MAX_BACKOFF).total_seconds())
            since = None
            try:
                self.client.connect_to_new_endpoint()
            except Exception as exc:  # noqa: BLE001 - whatever failed, the answer is to wait and retry
                if self._stopped.is_set():
                    return
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                failures += 1
                wait = backoff(self.first_backoff, failures, self.rng, MAX_BACKOFF).total_seconds()
                self._state(False, f"cannot connect ({error}); retrying with backoff, up to every "
                                   f"{MAX_BACKOFF.total_seconds():.0f} s")
                log.debug("Socket Mode connect attempt %d failed (%s); next in %.1f s", failures, error, wait)
                self._stopped.wait(wait)

    def _on_message(self, raw: str) -> None:
        """Each session starts with a hello: the first connects, later ones follow a lost or refreshed one."""
        try:
            hello = json.loads(raw).get("type") == "hello"
        except (ValueError, AttributeError):
            return
        if hello:
            self.sessions += 1
            self._state(True, "connected" if self.sessions == 1 else "reconnected")

    def _state(self, connected: bool, what: str) -> None:
        """Log changes only: a lost connection once, however many attempts it takes to get it back."""
        with self._state_lock:
            if self.connected is connected and what != "reconnected":
                return
            self.connected = connected
        (log.info if connected else log.warning)("Slack Socket Mode %s", what)
