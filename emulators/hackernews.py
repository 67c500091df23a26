"""Algolia HN Search API: `GET /api/v1/search_by_date` with query, tags, numericFilters, page, hitsPerPage.

Answers in the shape of tests/data/hackernews/search_by_date_page0.json (see its `_note` for where
that shape comes from): hits newest first, `page` 0-based, `nbPages` capped at the 1000-hit window
(a page past it is a 400 with Algolia's message), story and comment hits with their own fields.
Matching is close enough for tests: every query word must start a word of the title, text, URL or
author. Faults are a queue of Replies; items can be made to arrive between two page requests.
"""

from __future__ import annotations

import html
import re
import threading
from collections import defaultdict, deque
from datetime import datetime, timezone

from emulators.server import Emulator, Reply, Request

PAGINATION_LIMIT = 1000
_WORD = re.compile(r"\w+")
_NUMERIC = re.compile(r"^\s*(created_at_i|points|num_comments)\s*(<=|>=|<|>|=)\s*(-?\d+)\s*$")
PAGINATION_ERROR = ("you can only fetch the 1000 hits for this query. You can extend the number of hits returned "
                    "via the paginationLimitedTo index parameter or use the browse method.")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def story(object_id: int, title: str, created_at_i: int, author: str = "pg", points: int = 1, num_comments: int = 0,
          url: str | None = None, text: str | None = None, tags: tuple[str, ...] = ()) -> dict:
    """A story hit; `text` is HTML as HN stores it (Ask HN bodies), `url` the link of a link story."""
    return {"_tags": ["story", f"author_{author}", f"story_{object_id}", *tags], "author": author, "children": [],
            "created_at": _iso(created_at_i), "created_at_i": created_at_i, "num_comments": num_comments,
            "objectID": str(object_id), "points": points, "story_id": object_id, "story_text": text,
            "title": title, "updated_at": _iso(created_at_i), "url": url}


def comment(object_id: int, text: str, created_at_i: int, story_id: int, story_title: str, parent_id: int | None = None,
            author: str = "pg", story_url: str | None = None) -> dict:
    """A comment hit; `text` is HTML as HN stores it."""
    return {"_tags": ["comment", f"author_{author}", f"story_{story_id}"], "author": author, "children": [],
            "comment_text": text, "created_at": _iso(created_at_i), "created_at_i": created_at_i,
            "objectID": str(object_id), "parent_id": parent_id or story_id, "points": None, "story_id": story_id,
            "story_title": story_title, "story_url": story_url, "updated_at": _iso(created_at_i)}


def _words(text: str | None) -> list[str]:
    return _WORD.findall(html.unescape(re.sub(r"<[^>]+>", " ", text or "")).casefold())


def matches_query(hit: dict, query: str) -> bool:
    wanted = _words(query)
    have = [w for key in ("title", "story_text", "comment_text", "url", "author") for w in _words(hit.get(key))]
    return all(any(w.startswith(q) for w in have) for q in wanted)


def matches_tags(hit: dict, tags: str) -> bool:
    """Comma is AND; a parenthesised group is OR: `author_pg,(story,poll)`."""
    groups = re.findall(r"\(([^)]*)\)|([^,()]+)", tags or "")
    have = set(hit["_tags"])
    for ored, single in groups:
        options = [t.strip() for t in (ored or single).split(",") if t.strip()]
        if options and not have.intersection(options):
            return False
    return True


def matches_numeric(hit: dict, filters: str) -> bool:
    for condition in filter(None, (filters or "").split(",")):
        match = _NUMERIC.match(condition)
        if not match:
            raise ValueError(condition)
        value, op, bound = hit.get(match[1]), match[2], int(match[3])
        if value is None or not {"<": value < bound, "<=": value <= bound, ">": value > bound,
                                 ">=": value >= bound, "=": value == bound}[op]:
            return False
    return True


def _highlight(hit: dict, query: str) -> dict:
    words = _words(query)
    out = {}
    for key in ("title", "story_text", "comment_text", "url", "author", "story_title"):
        if hit.get(key) is None:
            continue
        value, matched = hit[key], [w for w in words if w in _words(hit[key])]
        for word in matched:
            value = re.sub(rf"(?i)\b({re.escape(word)})", r"<em>\1</em>", value)
        out[key] = {"value": value, "matchLevel": "full" if matched else "none", "matchedWords": matched}
    return out


class HackerNewsEmulator(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.items: list[dict] = []
        self.faults: deque[Reply] = deque()
        self.arrivals: dict[int, list[dict]] = defaultdict(list)
        self.requests: list[Request] = []

    @property
    def api_url(self) -> str:
        return self.url + "/api/v1"

    def add(self, *hits: dict) -> None:
        with self._lock:
            self.items.extend(hits)

    def arrive_before_page(self, page: int, *hits: dict) -> None:
        """These items are indexed just before the next request for `page` is answered."""
        with self._lock:
            self.arrivals[page].extend(hits)

    def fail(self, reply: Reply, times: int = 1) -> None:
        with self._lock:
            self.faults.extend([reply] * times)

    def searches(self) -> list[dict[str, str]]:
        with self._lock:
            return [r.query for r in self.requests if r.path == "/api/v1/search_by_date"]

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.faults:
                return self.faults.popleft()
            if request.path != "/api/v1/search_by_date":
                return Reply.json({"message": "Not Found", "status": 404}, 404)
            params = request.query
            try:
                page, per_page = int(params.get("page", 0)), int(params.get("hitsPerPage", 20))
                self.items.extend(self.arrivals.pop(page, []))
                found = [h for h in self.items if matches_tags(h, params.get("tags", ""))
                         and matches_numeric(h, params.get("numericFilters", ""))
                         and matches_query(h, params.get("query", ""))]
            except ValueError as exc:
                return Reply.json({"message": f"invalid parameter: {exc}", "status": 400}, 400)
        if per_page < 1 or page < 0 or page * per_page >= PAGINATION_LIMIT:
            return Reply.json({"message": PAGINATION_ERROR, "status": 400}, 400)
        found.sort(key=lambda h: (h["created_at_i"], int(h["objectID"])), reverse=True)
        pages = min(-(-len(found) // per_page), -(-PAGINATION_LIMIT // per_page))
        hits = [{**h, "_highlightResult": _highlight(h, params.get("query", ""))}
                for h in found[page * per_page:(page + 1) * per_page]]
        return Reply.json({"hits": hits, "nbHits": len(found), "page": page, "nbPages": pages, "hitsPerPage": per_page,
                           "exhaustiveNbHits": True, "exhaustiveTypo": True, "exhaustive": {"nbHits": True, "typo": True},
                           "query": params.get("query", ""), "params": "&".join(f"{k}={v}" for k, v in params.items()),
                           "processingTimeMS": 1, "serverTimeMS": 1})


def serve_demo(emulator: HackerNewsEmulator, data: dict, now: datetime) -> dict:
    """Publish the demo's sample stories and comments; returns the platform settings and sources."""
    epoch = int(now.timestamp())
    titles = {s["id"]: s["title"] for s in data["stories"]}
    emulator.add(*(story(s["id"], s["title"], epoch - 60 * s["age"], author=s["author"], points=s["points"],
                         num_comments=s["comments"], url=s.get("url"), text=s.get("text")) for s in data["stories"]))
    emulator.add(*(comment(c["id"], c["text"], epoch - 60 * c["age"], c["story"], titles[c["story"]],
                           author=c["author"]) for c in data["comments"]))
    return {"platform": {"base_url": emulator.api_url},
            "sources": [{"type": "hackernews", "name": "hacker-news", "interval": "30s"}]}
