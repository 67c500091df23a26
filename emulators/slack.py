"""Slack Web API and Socket Mode server, for tests and the demo.

Web API: chat.postMessage/update/postEphemeral, conversations.history/replies/list/members,
reactions.add, usergroups.users.list, users.info, auth.test, the files_upload_v2 sequence
(files.getUploadURLExternal, the upload URL, files.completeUploadExternal) and
apps.connections.open, which hands out the ws:// URL of a Socket Mode server (`SocketModeServer`)
that says hello, pushes envelopes, records acks and can send `disconnect` or drop the connection.

Responses follow the shapes in shared/fixtures/slack (slack-api-specs examples); like real Slack,
conversations.history leaves thread replies out. Faults are scripted per method: a Reply (429 with
Retry-After, a stall), `DELIVER_THEN_DROP` (the call takes effect, then the connection is closed
without an answer), or a whole outage.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import threading
import time
from collections import defaultdict, deque

from emulators.server import Emulator, Reply, Request

DELIVER_THEN_DROP = "deliver-then-drop"
DELIVER_THEN_HANG = "deliver-then-hang"  # the call takes effect, the answer never comes: a window to kill in
BAD_TOKEN_PREFIX = "xoxb-invalid"


def channel_id_for(name: str) -> str:
    return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:9].upper()


def rate_limited(retry_after: int = 1) -> Reply:
    return Reply.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(retry_after)})


class SlackEmulator(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self.messages: list[dict] = []
        self.calls: list[tuple[str, dict, dict]] = []  # method, params, headers
        self.called_at: list[float] = []  # time.monotonic() of each entry of `calls`
        self.faults: dict[str, deque] = defaultdict(deque)
        self.outage = False
        self.latency = 0.0  # seconds between storing a post and answering: a window for crashes
        self._updates: list[tuple[str, dict]] = []
        self.hanging = threading.Event()  # set when a DELIVER_THEN_HANG call has taken effect
        self._last_ts = 0.0
        self.channels: set[str] = set()  # channel names that exist, e.g. "#acme-alerts"
        self.ephemerals: list[dict] = []  # chat.postEphemeral: {"channel", "user", "text", "blocks"}
        self.reactions: list[dict] = []
        self.usergroups: dict[str, list[str]] = {}  # user group id -> member user ids
        self.members: dict[str, list[str]] = {}  # channel id -> member user ids
        self.users: dict[str, str] = {}  # user id -> display name
        self.uploads: dict[str, dict] = {}  # file id -> {"filename", "length", "content"}
        self._ids = itertools.count(1)
        self.socket: SocketModeServer | None = None

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.stop()
        super().stop()

    def socket_mode(self) -> "SocketModeServer":
        """The Socket Mode server behind apps.connections.open, started on first use."""
        with self._lock:
            if self.socket is None:
                self.socket = SocketModeServer().start()
            return self.socket

    def add_channel(self, name: str, members: list[str] = ()) -> str:
        channel_id = channel_id_for(name)
        with self._lock:
            self.channels.add(name)
            self.members[channel_id] = list(members)
        return channel_id

    def message(self, channel_id: str, ts: str) -> dict | None:
        with self._lock:
            return next((m for m in self.messages if m["channel"] == channel_id and m["ts"] == ts), None)

    def updates(self) -> list[tuple[str, dict]]:
        """chat.update calls that took effect (not those refused or rate limited), as (ts, params)."""
        with self._lock:
            return list(self._updates)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def fail(self, method: str, fault, times: int = 1) -> None:
        with self._lock:
            self.faults[method].extend([fault] * times)

    def posted(self, channel: str | None = None) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if channel is None or m["channel"] == channel_id_for(channel)]

    def _ts(self) -> str:
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def handle(self, request: Request) -> Reply:
        if request.path.startswith("/upload/"):
            return self._upload(request)
        method = request.path.removeprefix("/api/")
        params = request.form()
        with self._lock:
            self.calls.append((method, params, request.headers))
            self.called_at.append(time.monotonic())
            if self.outage:
                return Reply(503, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"})
            fault = self.faults[method].popleft() if self.faults[method] else None
            if isinstance(fault, Reply):
                return fault
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not token or token.startswith(BAD_TOKEN_PREFIX):
                return Reply.json({"ok": False, "error": "invalid_auth"})
            if method == "apps.connections.open" and not token.startswith("xapp-"):
                return Reply.json({"ok": False, "error": "not_allowed_token_type"})
            if method == "apps.connections.open":
                return Reply.json({"ok": True, "url": self.socket_mode().url_for_ticket(next(self._ids))})
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return Reply.json({"ok": False, "error": "unknown_method"}, 404)
            reply = handler(params)
        if self.latency and method in ("chat.postMessage", "chat.update", "files.completeUploadExternal"):
            self.stopped.wait(self.latency)
        if fault == DELIVER_THEN_HANG:
            self.hanging.set()
            self.stopped.wait(120)
            return Reply(drop=True)
        if fault == DELIVER_THEN_DROP:
            return Reply(drop=True)
        return reply

    def _auth_test(self, params: dict) -> Reply:
        return Reply.json({"ok": True, "url": "https://emulator.slack.com/", "team": "Emulator", "user": "mentionwatch",
                           "team_id": "T12345", "user_id": "U12345", "bot_id": "B12345"})

    def _chat_postMessage(self, params: dict) -> Reply:
        if not params.get("text") and not params.get("blocks"):
            return Reply.json({"ok": False, "error": "no_text"})
        channel = params.get("channel", "")
        if channel.startswith("#missing"):
            return Reply.json({"ok": False, "error": "channel_not_found"})
        blocks = _decoded(params.get("blocks"))
        metadata = _decoded(params.get("metadata"))
        if channel.startswith("#"):
            self.channels.add(channel)
        channel_id = channel if not channel.startswith("#") else channel_id_for(channel)
        thread_ts = params.get("thread_ts")
        if thread_ts and self.message(channel_id, thread_ts) is None:
            return Reply.json({"ok": False, "error": "thread_not_found"})
        message = {"type": "message", "subtype": "bot_message", "text": params.get("text", ""), "blocks": blocks,
                   "ts": self._ts(), "bot_id": "B12345", "channel": channel_id, "metadata": metadata,
                   "thread_ts": thread_ts, "params": params}
        self.messages.append(message)
        public = {k: v for k, v in message.items() if k not in ("params", "channel")}
        return Reply.json({"ok": True, "channel": channel_id, "ts": message["ts"], "message": public})

    def _chat_update(self, params: dict) -> Reply:
        message = self.message(params.get("channel", ""), params.get("ts", ""))
        if message is None:
            return Reply.json({"ok": False, "error": "message_not_found"})
        if message.get("files"):
            return Reply.json({"ok": False, "error": "cant_update_message"})
        message["text"] = params.get("text", message["text"])
        message["blocks"] = _decoded(params.get("blocks", message["blocks"]))
        message["edited"] = {"user": "U12345", "ts": self._ts()}
        self._updates.append((message["ts"], params))
        public = {k: v for k, v in message.items() if k not in ("params", "channel")}
        return Reply.json({"ok": True, "channel": message["channel"], "ts": message["ts"],
                           "text": message["text"], "message": public})

    def _chat_postEphemeral(self, params: dict) -> Reply:
        if not params.get("user"):
            return Reply.json({"ok": False, "error": "user_not_in_channel"})
        self.ephemerals.append({"channel": params.get("channel"), "user": params.get("user"),
                                "text": params.get("text", ""), "blocks": _decoded(params.get("blocks"))})
        return Reply.json({"ok": True, "message_ts": self._ts()})

    def _conversations_history(self, params: dict) -> Reply:
        """Top-level messages newest first; thread replies are only in conversations.replies."""
        channel = params.get("channel", "")
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        found = [m for m in reversed(self.messages) if m["channel"] == channel and oldest <= float(m["ts"]) <= latest
                 and m.get("thread_ts") in (None, m["ts"])]
        return self._page(found, params)

    def _conversations_replies(self, params: dict) -> Reply:
        """The parent, then its replies oldest first."""
        channel, ts = params.get("channel", ""), params.get("ts", "")
        parent = self.message(channel, ts)
        if parent is None:
            return Reply.json({"ok": False, "error": "thread_not_found"})
        oldest = float(params.get("oldest") or 0)
        replies = [m for m in self.messages if m["channel"] == channel and m.get("thread_ts") == ts
                   and m is not parent and float(m["ts"]) >= oldest]
        return self._page([parent, *replies], params)

    def _page(self, found: list[dict], params: dict) -> Reply:
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = found[start:start + limit]
        out = [{k: v for k, v in m.items() if k not in ("params", "channel") and (with_meta or k != "metadata")}
               for m in page]
        more = start + limit < len(found)
        return Reply.json({"ok": True, "messages": out, "has_more": more,
                           "response_metadata": {"next_cursor": str(start + limit) if more else ""}})

    def _conversations_members(self, params: dict) -> Reply:
        members = self.members.get(params.get("channel", ""))
        if members is None:
            return Reply.json({"ok": False, "error": "channel_not_found"})
        return Reply.json({"ok": True, "members": members, "response_metadata": {"next_cursor": ""}})

    def _usergroups_users_list(self, params: dict) -> Reply:
        users = self.usergroups.get(params.get("usergroup", ""))
        if users is None:
            return Reply.json({"ok": False, "error": "no_such_subteam"})
        return Reply.json({"ok": True, "users": users})

    def _users_info(self, params: dict) -> Reply:
        user = params.get("user", "")
        if user not in self.users:
            return Reply.json({"ok": False, "error": "user_not_found"})
        name = self.users[user]
        return Reply.json({"ok": True, "user": {"id": user, "name": name, "real_name": name,
                                                "profile": {"display_name": name}}})

    def _files_getUploadURLExternal(self, params: dict) -> Reply:
        if not params.get("filename") or not params.get("length"):
            return Reply.json({"ok": False, "error": "invalid_arguments"})
        file_id = f"F{next(self._ids):09d}"
        self.uploads[file_id] = {"filename": params["filename"], "length": int(params["length"]), "content": None}
        return Reply.json({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})

    def _upload(self, request: Request) -> Reply:
        with self._lock:
            self.calls.append(("upload", {"path": request.path}, request.headers))
            upload = self.uploads.get(request.path.removeprefix("/upload/"))
            if upload is None:
                return Reply(404, b"not found")
            upload["content"] = request.body
        return Reply(200, f"OK - {len(request.body)}".encode(), {"Content-Type": "text/plain"})

    def _files_completeUploadExternal(self, params: dict) -> Reply:
        files = _decoded(params.get("files")) or []
        channel_id = params.get("channel_id")
        if channel_id and channel_id not in {channel_id_for(n) for n in self.channels} | set(self.members):
            return Reply.json({"ok": False, "error": "channel_not_found"})
        done = []
        for f in files:
            upload = self.uploads.get(f.get("id", ""))
            if upload is None or upload["content"] is None:
                return Reply.json({"ok": False, "error": "file_not_found"})
            done.append({"id": f["id"], "name": upload["filename"], "title": f.get("title") or upload["filename"],
                         "size": len(upload["content"])})
        if channel_id:
            self.messages.append({"type": "message", "text": params.get("initial_comment") or "", "blocks": None,
                                  "ts": self._ts(), "user": "U12345", "channel": channel_id, "metadata": None,
                                  "thread_ts": params.get("thread_ts"), "files": done, "params": params})
        return Reply.json({"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in done]})

    def uploaded(self, channel: str | None = None) -> list[dict]:
        return [m for m in self.posted(channel) if m.get("files")]

    def _conversations_list(self, params: dict) -> Reply:
        channels = [{"id": channel_id_for(n), "name": n.lstrip("#"), "is_channel": True}
                    for n in sorted(self.channels)]
        return Reply.json({"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}})

    def _reactions_add(self, params: dict) -> Reply:
        key = {"channel": params.get("channel"), "timestamp": params.get("timestamp"), "name": params.get("name")}
        if key in self.reactions:
            return Reply.json({"ok": False, "error": "already_reacted"})
        self.reactions.append(key)
        return Reply.json({"ok": True})


def _decoded(value):
    """Block Kit, metadata and file lists arrive as JSON strings in form bodies and as objects in JSON ones."""
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


class SocketModeServer:
    """A Socket Mode websocket endpoint: hello on connect, envelopes pushed by the test, acks recorded.

    `websockets` is imported here, not at module load, so the Web API emulator works without it.
    """

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.connections: list = []  # every connection ever accepted, the live one last
        self.acks: list[dict] = []
        self.pushed: list[dict] = []
        self._ids = itertools.count(1)
        self._server = serve(self._serve, "127.0.0.1", 0, ping_interval=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "SocketModeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def url_for_ticket(self, ticket: int) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket=t{ticket}&app_id=A12345"

    def _serve(self, connection) -> None:
        connection.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {
            "host": "emulator", "approximate_connection_time": 18060}, "connection_info": {"app_id": "A12345"}}))
        with self._changed:
            self.connections.append(connection)
            self._changed.notify_all()
        try:
            for raw in connection:
                message = json.loads(raw)
                with self._changed:
                    self.acks.append(message)
                    self._changed.notify_all()
        except Exception:  # noqa: BLE001 - a dropped client is part of the scenarios
            pass

    def wait_connections(self, count: int, timeout: float = 20) -> bool:
        """Wait until `count` connections were accepted in all, the last one still open."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.connections) >= count and _open(self.connections[-1]),
                                          timeout)

    def wait_acked(self, envelope_id: str, timeout: float = 20) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.acks),
                                          timeout)

    def push(self, type_: str, payload: dict, retry_attempt: int = 0, envelope_id: str | None = None) -> str:
        """Send one envelope on the live connection; returns its envelope id."""
        envelope_id = envelope_id or f"env-{next(self._ids)}"
        envelope = {"envelope_id": envelope_id, "type": type_, "accepts_response_payload": type_ == "interactive",
                    "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else "",
                    "payload": payload}
        with self._lock:
            self.pushed.append(envelope)
            connection = self.connections[-1]
        connection.send(json.dumps(envelope))
        return envelope_id

    def block_action(self, user_id: str, user_name: str, channel_id: str, message_ts: str, action_id: str,
                     value: str, action_ts: str | None = None, retry_attempt: int = 0,
                     selected: str | None = None) -> str:
        """A button press (or, with `selected`, a static_select choice) as Slack sends it."""
        action = {"action_id": action_id, "block_id": f"actions:{value}", "type": "button",
                  "value": value, "action_ts": action_ts or f"{time.time():.6f}"}
        if selected is not None:
            action = {**action, "type": "static_select", "value": None,
                      "selected_option": {"value": selected, "text": {"type": "plain_text", "text": selected}}}
        payload = {"type": "block_actions", "user": {"id": user_id, "username": user_name, "name": user_name,
                                                     "team_id": "T12345"},
                   "api_app_id": "A12345", "team": {"id": "T12345"}, "channel": {"id": channel_id},
                   "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id},
                   "message": {"ts": message_ts, "type": "message"}, "trigger_id": "t.1", "actions": [action]}
        return self.push("interactive", payload, retry_attempt)

    def reaction_added(self, user_id: str, channel_id: str, ts: str, reaction: str, event_id: str,
                       retry_attempt: int = 0) -> str:
        event = {"type": "reaction_added", "user": user_id, "reaction": reaction, "item_user": "U12345",
                 "item": {"type": "message", "channel": channel_id, "ts": ts}, "event_ts": f"{time.time():.6f}"}
        payload = {"token": "", "team_id": "T12345", "api_app_id": "A12345", "event": event,
                   "type": "event_callback", "event_id": event_id, "event_time": int(time.time())}
        return self.push("events_api", payload, retry_attempt)

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """What Slack sends before it closes a connection: the client should open a new one."""
        with self._lock:
            connection = self.connections[-1]
        connection.send(json.dumps({"type": "disconnect", "reason": reason,
                                    "debug_info": {"host": "emulator"}}))

    def drop(self) -> None:
        """Close the live connection without a word, as a network failure would."""
        with self._lock:
            connection = self.connections[-1]
        connection.socket.shutdown(socket.SHUT_RDWR)


def _open(connection) -> bool:
    from websockets.protocol import State

    return connection.state is State.OPEN
