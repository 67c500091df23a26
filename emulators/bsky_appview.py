"""A Bluesky AppView on 127.0.0.1 speaking XRPC: `app.bsky.actor.getProfiles`, `app.bsky.feed.searchPosts`
and `app.bsky.feed.getPostThread`, with the lexicons' shapes (profileViewDetailed, postView,
threadViewPost), XRPC errors (`{"error": "NotFound", "message": …}` with 400) and the
`RateLimit-Limit/Remaining/Reset/Policy` headers (reset in epoch seconds); a spent window answers 429.

Tests add profiles and posts (`profile`, `post`); a post replying to another (`reply_to`) shows in
its thread. `search_first_page_only` answers search without a cursor, as for logged-out clients;
`refuse_search` answers it 403; `broken[method]` is the answer a method gives instead of its own
(an error status, junk, a stall or a dropped connection)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

from emulators.server import Emulator, Reply, Request

COLLECTION = "app.bsky.feed.post"


def _error(name: str, message: str, status: int = 400, headers: dict | None = None) -> Reply:
    return Reply.json({"error": name, "message": message}, status, headers)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class AppViewEmulator(Emulator):
    def __init__(self, limit: int = 3000, window_s: int = 300) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.profiles: dict[str, dict] = {}          # did -> profileViewDetailed
        self.posts: dict[str, dict] = {}             # at-uri -> postView
        self.limit, self.remaining, self.window_s = limit, limit, window_s
        self.reset_at = int(time.time()) + window_s
        self.search_first_page_only = False
        self.refuse_search = False
        self.broken: dict[str, Reply] = {}          # method -> the answer it gives instead (an outage, junk)
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []   # (method, query pairs)

    # --- what tests do ---

    def profile(self, did: str, handle: str, followers: int = 0) -> None:
        with self._lock:
            self.profiles[did] = {"did": did, "handle": handle, "displayName": handle.split(".")[0].title(),
                                  "followersCount": followers, "followsCount": 3, "postsCount": 10,
                                  "indexedAt": "2026-01-01T00:00:00.000Z", "labels": []}

    def post(self, did: str, rkey: str, text: str, created: datetime, reply_to: str | None = None,
             facets: list | None = None) -> str:
        """Publish a post (a reply when `reply_to` is a post's at-uri); returns its at-uri."""
        uri = f"at://{did}/{COLLECTION}/{rkey}"
        record = {"$type": COLLECTION, "text": text, "createdAt": _stamp(created), "langs": ["en"]}
        if facets:
            record["facets"] = facets
        with self._lock:
            if reply_to:
                parent = self.posts[reply_to]
                root = (parent["record"].get("reply") or {}).get("root") or {"uri": reply_to, "cid": parent["cid"]}
                record["reply"] = {"root": root, "parent": {"uri": reply_to, "cid": parent["cid"]}}
                parent["replyCount"] += 1
            author = self.profiles.get(did) or {"did": did, "handle": "handle.invalid"}
            self.posts[uri] = {"uri": uri, "cid": f"bafy{rkey}", "record": record, "indexedAt": _stamp(created),
                               "author": {k: author[k] for k in ("did", "handle", "displayName") if k in author},
                               "replyCount": 0, "repostCount": 0, "likeCount": 0, "quoteCount": 0, "labels": []}
        return uri

    def called(self, method: str) -> list[list[tuple[str, str]]]:
        with self._lock:
            return [query for name, query in self.calls if name == method]

    # --- the server ---

    def handle(self, request: Request) -> Reply:
        method = request.path.removeprefix("/xrpc/")
        with self._lock:
            self.calls.append((method, parse_qsl(request.raw_query)))
            now = int(time.time())
            if now >= self.reset_at:
                self.reset_at, self.remaining = now + self.window_s, self.limit
            headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Reset": str(self.reset_at),
                       "RateLimit-Policy": f"{self.limit};w={self.window_s}"}
            if self.remaining <= 0:
                return _error("RateLimitExceeded", "Rate Limit Exceeded", 429,
                              {**headers, "RateLimit-Remaining": "0"})
            self.remaining -= 1
            headers["RateLimit-Remaining"] = str(self.remaining)
            reply = replace(self.broken[method]) if method in self.broken else self._answer(method, request)
        reply.headers.update(headers)
        return reply

    def _answer(self, method: str, request: Request) -> Reply:
        if method == "app.bsky.actor.getProfiles":
            actors = request.all("actors")
            if not actors or len(actors) > 25:
                return _error("InvalidRequest", "actors must hold 1 to 25 items")
            wanted = {a.casefold() for a in actors}
            return Reply.json({"profiles": [p for p in self.profiles.values()
                                            if p["did"].casefold() in wanted or p["handle"].casefold() in wanted]})
        if method == "app.bsky.feed.searchPosts":
            return self._search(request)
        if method == "app.bsky.feed.getPostThread":
            uri = request.query.get("uri", "")
            if uri not in self.posts:
                return _error("NotFound", f"Post not found: {uri}")
            return Reply.json({"thread": self._thread_view(uri, int(request.query.get("depth", 6)))})
        return _error("MethodNotImplemented", f"Method Not Implemented: {method}", 501)

    def _thread_view(self, uri: str, depth: int) -> dict:
        replies = [u for u, p in self.posts.items() if (p["record"].get("reply") or {}).get("parent", {}).get("uri") == uri]
        return {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.posts[uri],
                "replies": [self._thread_view(u, depth - 1) for u in replies] if depth > 0 else []}

    def _search(self, request: Request) -> Reply:
        if self.refuse_search:
            return _error("Forbidden", "Search requires authentication", 403)
        q = request.query.get("q", "")
        if not q:
            return _error("InvalidRequest", 'Error: Params must have the property "q"')
        since, until = request.query.get("since"), request.query.get("until")
        hits = [p for p in self.posts.values() if _matches(q, p)
                and (since is None or _parse(p["record"]["createdAt"]) >= _parse(since))
                and (until is None or _parse(p["record"]["createdAt"]) < _parse(until))]
        hits.sort(key=lambda p: p["record"]["createdAt"], reverse=True)
        offset, limit = int(request.query.get("cursor", 0)), min(int(request.query.get("limit", 25)), 100)
        page = hits[offset:offset + limit]
        more = offset + limit < len(hits) and not self.search_first_page_only
        return Reply.json({"posts": page, "hitsTotal": len(hits), **({"cursor": str(offset + limit)} if more else {})})


def _matches(q: str, view: dict) -> bool:
    """The emulator's search: a phrase, a #tag, `domain:` of a link facet, or `mentions:` of a handle."""
    text, record = view["record"]["text"].casefold(), view["record"]
    features = [f for facet in record.get("facets") or [] for f in facet.get("features") or []]
    if q.startswith("domain:"):
        host = q[7:].casefold()
        return any((urlsplit(f.get("uri", "")).hostname or "").endswith(host) for f in features)
    if q.startswith("mentions:"):
        return f"@{q[9:].casefold()}" in text
    if q.startswith("#"):
        return q[1:].casefold() in [str(f.get("tag", "")).casefold() for f in features] or q.casefold() in text
    return q.strip('"').casefold() in text
