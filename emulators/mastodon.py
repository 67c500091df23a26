"""One Mastodon instance: `GET /api/v1/timelines/tag/:hashtag` with `limit`, `min_id`, `since_id`, `max_id`.

Statuses are Mastodon's entity (id as a numeric string, HTML `content`, `account` with `acct` and
`followers_count`, `reblog`, `tags`); a page is newest first; `min_id` gives the page just after it
(the oldest newer statuses), `since_id` the newest ones after it. Every answer carries
`X-RateLimit-Limit/Remaining/Reset` (ISO time); with none remaining the answer is a 429 with them.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

from emulators.server import Emulator, Reply, Request

PREFIX = "/api/v1/timelines/tag/"


def _id(item: dict) -> int:
    """A status's id as a number (0 for the malformed ones tests plant)."""
    value = item.get("id")
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def status(sid: int, text_html: str, acct: str = "alice", tags: tuple[str, ...] = (), followers: int = 10,
           created: datetime | None = None, host: str = "mastodon.example", reblog: dict | None = None) -> dict:
    created = created or datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=sid % 100_000)
    user = acct.split("@")[0]
    return {"id": str(sid), "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "in_reply_to_id": None,
            "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "en",
            "uri": f"https://{host}/users/{user}/statuses/{sid}", "url": f"https://{host}/@{user}/{sid}",
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "content": text_html,
            "reblog": reblog, "account": {"id": str(sid % 997), "username": user, "acct": acct,
                                           "display_name": user.title(), "followers_count": followers,
                                           "url": f"https://{host}/@{user}"},
            "media_attachments": [], "mentions": [], "tags": [{"name": t, "url": f"https://{host}/tags/{t}"}
                                                               for t in tags]}


class MastodonEmulator(Emulator):
    def __init__(self, limit: int = 300, window: timedelta = timedelta(minutes=5)) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.statuses: dict[str, list[dict]] = {}   # hashtag -> statuses
        self.limit, self.remaining = limit, limit
        self.reset_at = datetime.now(timezone.utc) + window
        self.requests: list[dict[str, str]] = []

    def add(self, tag: str, *items: dict) -> None:
        with self._lock:
            self.statuses.setdefault(tag.casefold(), []).extend(items)

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith(PREFIX):
            return Reply.json({"error": "Record not found"}, 404)
        tag = unquote(request.path[len(PREFIX):]).casefold()
        with self._lock:
            self.requests.append({"tag": tag, **request.query})
            headers = {"X-RateLimit-Limit": str(self.limit),
                       "X-RateLimit-Reset": self.reset_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
            if self.remaining <= 0:
                return Reply.json({"error": "Too many requests"}, 429, {**headers, "X-RateLimit-Remaining": "0"})
            self.remaining -= 1
            headers["X-RateLimit-Remaining"] = str(self.remaining)
            items = sorted(self.statuses.get(tag, []), key=_id)
        limit = min(int(request.query.get("limit", 20)), 40)
        for key, keep in (("min_id", lambda s, v: _id(s) > v), ("since_id", lambda s, v: _id(s) > v),
                          ("max_id", lambda s, v: _id(s) < v)):
            if key in request.query:
                value = int(request.query[key])
                items = [s for s in items if keep(s, value)]
        page = items[:limit] if "min_id" in request.query else items[-limit:]
        return Reply.json(list(reversed(page)), headers=headers)


def serve_demo(emulator: MastodonEmulator, data: dict, now: datetime) -> dict:
    """Publish the demo's statuses; returns the platform settings and the source."""
    for item in data["statuses"]:
        reblog = None
        made = status(item["id"], item["html"], acct=item["acct"], tags=tuple(item.get("tags", [])),
                      followers=item.get("followers", 10), created=now - timedelta(minutes=item["age"]))
        if item.get("boost_of"):
            original = next(s for s in data["statuses"] if s["id"] == item["boost_of"])
            reblog = status(original["id"], original["html"], acct=original["acct"],
                            followers=original.get("followers", 10), created=now - timedelta(minutes=original["age"]))
            made = {**made, "content": "", "reblog": reblog}
        for tag in item.get("tags", []) or ["acmecloud"]:
            emulator.add(tag, made)
    return {"platform": {"connect_timeout": "2s", "read_timeout": "2s"},
            "sources": [{"type": "mastodon", "name": "mastodon", "instances": [emulator.url],
                         "hashtags": ["acmecloud"], "interval": "30s"}]}
