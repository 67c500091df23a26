"""Slack Web API server: chat.postMessage/update, conversations.history/list, reactions.add, auth.test.

Responses follow the shapes in shared/fixtures/slack (slack-api-specs examples). Faults are
scripted per method: a Reply (429 with Retry-After, a stall), `DELIVER_THEN_DROP` (the message is
stored, then the connection is closed without an answer), or a whole outage.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict, deque

from emulators.server import Emulator, Reply, Request

DELIVER_THEN_DROP = "deliver-then-drop"
BAD_TOKEN_PREFIX = "xoxb-invalid"


def channel_id_for(name: str) -> str:
    return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:9].upper()


def rate_limited(retry_after: int = 1) -> Reply:
    return Reply.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(retry_after)})


class SlackEmulator(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.messages: list[dict] = []
        self.calls: list[tuple[str, dict, dict]] = []  # method, params, headers
        self.faults: dict[str, deque] = defaultdict(deque)
        self.outage = False
        self.latency = 0.0  # seconds between storing a post and answering: a window for crashes
        self._last_ts = 0.0
        self.channels: set[str] = set()  # channel names that exist, e.g. "#acme-alerts"

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
        method = request.path.removeprefix("/api/")
        params = request.form()
        with self._lock:
            self.calls.append((method, params, request.headers))
            if self.outage:
                return Reply(503, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"})
            fault = self.faults[method].popleft() if self.faults[method] else None
            if isinstance(fault, Reply):
                return fault
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not token or token.startswith(BAD_TOKEN_PREFIX):
                return Reply.json({"ok": False, "error": "invalid_auth"})
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return Reply.json({"ok": False, "error": "unknown_method"}, 404)
            reply = handler(params)
        if self.latency and method == "chat.postMessage":
            self.stopped.wait(self.latency)
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
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if channel.startswith("#"):
            self.channels.add(channel)
        channel_id = channel if not channel.startswith("#") else channel_id_for(channel)
        message = {"type": "message", "subtype": "bot_message", "text": params.get("text", ""), "blocks": blocks,
                   "ts": self._ts(), "bot_id": "B12345", "channel": channel_id, "metadata": metadata,
                   "thread_ts": params.get("thread_ts"), "params": params}
        self.messages.append(message)
        public = {k: v for k, v in message.items() if k not in ("params", "channel")}
        return Reply.json({"ok": True, "channel": channel_id, "ts": message["ts"], "message": public})

    def _chat_update(self, params: dict) -> Reply:
        for message in self.messages:
            if message["ts"] == params.get("ts") and message["channel"] == params.get("channel"):
                message["text"] = params.get("text", message["text"])
                message["blocks"] = params.get("blocks", message["blocks"])
                return Reply.json({"ok": True, "channel": message["channel"], "ts": message["ts"],
                                   "text": message["text"]})
        return Reply.json({"ok": False, "error": "message_not_found"})

    def _conversations_history(self, params: dict) -> Reply:
        channel = params.get("channel", "")
        oldest = float(params.get("oldest") or 0)
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [m for m in reversed(self.messages) if m["channel"] == channel and float(m["ts"]) >= oldest]
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = found[start:start + limit]
        out = [{k: v for k, v in m.items() if k not in ("params", "channel") and (with_meta or k != "metadata")}
               for m in page]
        more = start + limit < len(found)
        return Reply.json({"ok": True, "messages": out, "has_more": more,
                           "response_metadata": {"next_cursor": str(start + limit) if more else ""}})

    def _conversations_list(self, params: dict) -> Reply:
        channels = [{"id": channel_id_for(n), "name": n.lstrip("#"), "is_channel": True}
                    for n in sorted(self.channels)]
        return Reply.json({"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}})

    def _reactions_add(self, params: dict) -> Reply:
        return Reply.json({"ok": True})
