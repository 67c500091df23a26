"""One Mastodon instance: `GET /api/v1/timelines/tag/:hashtag` with `limit`, `min_id`, `since_id`, `max_id`;
`/api/v2/search?type=statuses` (`q`, `limit`, `offset`, `min_id`; statuses only for a token, as
Mastodon answers anonymous status searches with none); `/api/v1/notifications?types[]=mention`
(token required, else 401); `/api/v1/statuses/:id/context`; `/api/v2/instance` naming its
streaming server; and that server, a websocket at `/api/v1/streaming?stream=hashtag&tag=…` sending
`{"stream": [...], "event": "update", "payload": "<status JSON>"}`.

Statuses are Mastodon's entity (id as a numeric string, HTML `content`, `account` with `acct` and
`followers_count`, `reblog`, `tags`, `in_reply_to_id`); a page is newest first; `min_id` gives the
page just after it (the oldest newer statuses), `since_id` the newest ones after it. Every answer
carries `X-RateLimit-Limit/Remaining/Reset` (ISO time); with none remaining the answer is a 429.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.sync.server import ServerConnection, serve

from emulators.server import Emulator, Reply, Request

PREFIX = "/api/v1/timelines/tag/"


def _id(item: dict) -> int:
    """A status's id as a number (0 for the malformed ones tests plant)."""
    value = item.get("id")
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def status(sid: int, text_html: str, acct: str = "alice", tags: tuple[str, ...] = (), followers: int = 10,
           created: datetime | None = None, host: str = "mastodon.example", reblog: dict | None = None,
           in_reply_to: int | None = None) -> dict:
    created = created or datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=sid % 100_000)
    user = acct.split("@")[0]
    return {"id": str(sid), "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "in_reply_to_id": str(in_reply_to) if in_reply_to else None,
            "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "en",
            "uri": f"https://{host}/users/{user}/statuses/{sid}", "url": f"https://{host}/@{user}/{sid}",
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "content": text_html,
            "reblog": reblog, "account": {"id": str(sid % 997), "username": user, "acct": acct,
                                           "display_name": user.title(), "followers_count": followers,
                                           "url": f"https://{host}/@{user}"},
            "media_attachments": [], "mentions": [], "tags": [{"name": t, "url": f"https://{host}/tags/{t}"}
                                                               for t in tags]}


class MastodonEmulator(Emulator):
    def __init__(self, limit: int = 300, window: timedelta = timedelta(minutes=5), token: str = "") -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.statuses: dict[str, list[dict]] = {}   # hashtag -> statuses
        self.searchable: list[dict] = []             # statuses whose authors opted in to search
        self.mentions: list[dict] = []               # the token's account's notifications
        self.replies: list[dict] = []                # statuses only reachable through a context
        self.token = token
        self.has_search = True
        self.stalled = False
        self.limit, self.remaining = limit, limit
        self.reset_at = datetime.now(timezone.utc) + window
        self.requests: list[dict[str, str]] = []    # hashtag timeline requests
        self.calls: list[tuple[str, dict[str, str]]] = []  # every request: path, query
        self._sockets: list[tuple[ServerConnection, str]] = []
        self.stream_connects: list[dict] = []          # each websocket's query and Authorization header
        self._ws = serve(self._stream, "127.0.0.1", 0, compression=None)
        self.streaming_url = f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}"
        self._ws_thread = threading.Thread(target=self._ws.serve_forever, daemon=True)

    def start(self) -> "MastodonEmulator":
        self._ws_thread.start()
        return super().start()

    def stop(self) -> None:
        self.drop_streams()
        self._ws.shutdown()
        super().stop()

    # --- what tests do ---

    def add(self, tag: str, *items: dict) -> None:
        with self._lock:
            self.statuses.setdefault(tag.casefold(), []).extend(items)

    def push(self, tag: str, item: dict) -> None:
        """A new status: on the hashtag's timeline and sent to every socket streaming the hashtag (unless
        the streams are `stalled`: open, but delivering nothing)."""
        self.add(tag, item)
        if self.stalled:
            return
        message = json.dumps({"stream": ["hashtag", tag], "event": "update", "payload": json.dumps(item)})
        with self._lock:
            sockets = [ws for ws, t in self._sockets if t == tag.casefold()]
        for ws in sockets:
            try:
                ws.send(message)
            except Exception:  # noqa: BLE001 - a socket closing meanwhile
                pass

    def mention(self, nid: int, item: dict) -> None:
        with self._lock:
            self.mentions.append({"id": str(nid), "type": "mention", "created_at": item["created_at"],
                                  "account": item["account"], "status": item})

    def drop_streams(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for ws, _ in sockets:
            ws.close()

    # --- REST ---

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.calls.append((request.path, request.query))
            tag = unquote(request.path[len(PREFIX):]).casefold() if request.path.startswith(PREFIX) else None
            if tag is not None:
                self.requests.append({"tag": tag, **request.query})
            headers = {"X-RateLimit-Limit": str(self.limit),
                       "X-RateLimit-Reset": self.reset_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
            if self.remaining <= 0:
                return Reply.json({"error": "Too many requests"}, 429, {**headers, "X-RateLimit-Remaining": "0"})
            self.remaining -= 1
            headers["X-RateLimit-Remaining"] = str(self.remaining)
            authorized = bool(self.token) and request.headers.get("authorization") == f"Bearer {self.token}"
            if tag is not None:
                return Reply.json(_page(self.statuses.get(tag, []), request.query), headers=headers)
            if request.path == "/api/v2/instance":
                return Reply.json({"domain": "mastodon.example", "version": "4.3.0",
                                   "configuration": {"urls": {"streaming": self.streaming_url}}}, headers=headers)
            if request.path == "/api/v2/search" and self.has_search:
                return Reply.json(self._search(request.query, authorized), headers=headers)
            if request.path == "/api/v1/notifications":
                if not authorized:
                    return Reply.json({"error": "The access token is invalid"}, 401, headers)
                wanted = request.all("types[]")
                return Reply.json(_page([n for n in self.mentions if not wanted or n["type"] in wanted],
                                        request.query), headers=headers)
            context = re.fullmatch(r"/api/v1/statuses/(\d+)/context", request.path)
            if context and context.group(1) in self._everything():
                return Reply.json({"ancestors": [], "descendants": self._descendants(context.group(1))}, headers=headers)
        return Reply.json({"error": "Record not found"}, 404, headers)

    def _everything(self) -> dict[str, dict]:
        every = [*self.searchable, *self.replies, *(n["status"] for n in self.mentions),
                 *(s for items in self.statuses.values() for s in items)]
        return {s["id"]: s for s in every if isinstance(s, dict) and isinstance(s.get("id"), str)}

    def _descendants(self, sid: str) -> list[dict]:
        every, out, parents = self._everything(), [], {sid}
        for item in sorted(every.values(), key=_id):
            if item.get("in_reply_to_id") in parents:
                out.append(item)
                parents.add(item["id"])
        return out

    def _search(self, query: dict, authorized: bool) -> dict:
        term = query.get("q", "").strip('"').casefold()
        hits = [s for s in self.searchable if term and term in s["content"].casefold()] if authorized else []
        if "min_id" in query:
            hits = [s for s in hits if _id(s) > int(query["min_id"])]
        hits.sort(key=lambda s: s["created_at"], reverse=True)  # relevance or time, not id order
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 20)), 40)
        return {"accounts": [], "statuses": hits[offset:offset + limit], "hashtags": []}

    # --- streaming ---

    def _stream(self, ws: ServerConnection) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        with self._lock:
            self.stream_connects.append({**query, "authorization": ws.request.headers.get("Authorization")})
            if query.get("stream") != "hashtag" or not query.get("tag"):
                ws.close(1008, "unknown stream")
                return
            self._sockets.append((ws, query["tag"].casefold()))
        for _ in ws:  # clients say nothing; this returns when the socket closes
            pass


def _page(items: list[dict], query: dict) -> list[dict]:
    """A Mastodon list page: newest first; `min_id` the oldest after it, `since_id` the newest after it."""
    items = sorted(items, key=_id)
    limit = min(int(query.get("limit", 20)), 40)
    for key, keep in (("min_id", lambda s, v: _id(s) > v), ("since_id", lambda s, v: _id(s) > v),
                      ("max_id", lambda s, v: _id(s) < v)):
        if key in query:
            value = int(query[key])
            items = [s for s in items if keep(s, value)]
    page = items[:limit] if "min_id" in query else items[-limit:]
    return list(reversed(page))


def serve_demo(emulator: MastodonEmulator, data: dict, now: datetime) -> dict:
    """Publish the demo's statuses, and push its `streamed` ones over the hashtag stream once the
    daemon subscribes; returns the platform settings, the (streaming) source and `settled(store)`:
    whether the source's cursor covers every pushed status."""
    def made(item: dict) -> dict:
        return status(item["id"], item["html"], acct=item["acct"], tags=tuple(item.get("tags", [])),
                      followers=item.get("followers", 10), created=now - timedelta(minutes=item["age"]))

    for item in data["statuses"]:
        entry = made(item)
        if item.get("boost_of"):
            original = next(s for s in data["statuses"] if s["id"] == item["boost_of"])
            entry = {**entry, "content": "", "reblog": made({**original, "tags": ()})}
        for tag in item.get("tags", []) or ["acmecloud"]:
            emulator.add(tag, entry)
    streamed, pushed = data.get("streamed", []), []

    def push() -> None:
        deadline = time.monotonic() + 120
        while not (emulator.stream_connects and emulator.requests) and time.monotonic() < deadline:
            time.sleep(0.05)  # subscribed, and the timeline read over REST: what follows comes by the stream
        for item in streamed:
            for tag in item.get("tags", []) or ["acmecloud"]:
                emulator.push(tag, made({**item, "age": 0}))
            pushed.append(item)

    threading.Thread(target=push, name="mastodon-demo", daemon=True).start()

    def settled(store) -> bool:
        timelines = (store.get_cursor("acme/mastodon") or {}).get("timelines", {})
        return len(pushed) == len(streamed) and all(
            int(timelines.get(f"{emulator.url}#{tag}") or 0) >= item["id"]
            for item in pushed for tag in item.get("tags", []) or ["acmecloud"])

    return {"platform": {"connect_timeout": "2s", "read_timeout": "2s"},
            "sources": [{"type": "mastodon", "name": "mastodon", "instances": [emulator.url],
                         "hashtags": ["acmecloud"], "interval": "2s", "streaming": True}], "settled": settled}
