"""Hacker News stories and comments that mention a brand, from the public Algolia HN Search API.

`search_by_date` answers newest first and pages with `page=`. Each query keeps its own cursor:
the newest `created_at_i` stored and the objectIDs stored since a short while before it (items
share seconds, and Algolia indexes some late), and each poll asks only for `created_at_i>=` that
floor. When a poll's page budget, or Algolia's 1000-hit window, ends before the floor is reached,
the unread stretch between the floor and the oldest item read is kept as a backlog in the cursor
and read first on the next poll: nothing is skipped, it only waits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import requests
from pydantic import Field, field_validator

from connectors import http
from connectors.cursors import Seen
from connectors.registry import Platform
from connectors.text import strip_html
from monitor.configbase import ApiPlatform, Duration, FIRST_POLL_LOOKBACK, Interval, Owned, SLUG
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.records import FetchResult, Post
from monitor.query import Node, platform_search, search_words

PLATFORM = "hackernews"
ITEM_URL = "https://news.ycombinator.com/item?id={}"
_WORD = re.compile(r"\w+")


# --- config ------------------------------------------------------------------------------------

class HackerNewsPlatform(ApiPlatform):
    """The public Algolia HN Search API (`search_by_date`, newest first)."""

    base_url: str = Field("https://hn.algolia.com/api/v1", description="Algolia HN Search API base URL")
    hits_per_page: int = Field(100, ge=1, le=1000, description="Hits per search page")
    max_pages: int = Field(5, ge=1, le=50, description="Pages read per query per poll; the rest waits for the next poll")
    initial_pages: int = Field(1, ge=1, le=50, description="Pages read on the first poll of a query")
    late_window: Duration = Field(timedelta(minutes=10), description="Items indexed up to this long after they "
                                  "were posted are still picked up")


class HackerNewsSource(Owned):
    type: Literal["hackernews"]
    name: str = Field(pattern=SLUG, description="Unique within the brand; the source id is brand/name")
    queries: list[str] = Field([], description="Search queries; default: the brand's names, aliases and domains")
    comments: bool = Field(True, description="Search comments as well as stories")
    interval: Interval = Field(timedelta(minutes=5), description="Time between polls")
    require_match: bool = Field(True, description="false: every hit is this brand's mention")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll (of a new source, or a new "
                                          "install) stores items published this long ago at most, as backfill")

    @field_validator("queries")
    @classmethod
    def _not_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("expected non-empty queries")
        return [v.strip() for v in values]


def default_queries(terms: list[str]) -> list[str]:
    """The fewest queries that cover every term: Algolia ANDs a query's words, so `Acme` already
    finds everything `Acme Cloud` and `acme.io` would."""
    words = {term: frozenset(_WORD.findall(term.casefold())) for term in terms}
    kept: list[str] = []
    for term in sorted(dict.fromkeys(terms), key=lambda t: len(words[t])):
        if words[term] and not any(words[k] <= words[term] for k in kept):
            kept.append(term)
    return kept


def to_hackernews(node: Node) -> list[str] | None:
    """Algolia ANDs the words of a query and has no OR: the query as one search per disjunct of its
    positive terms (the registry entry's `search`)."""
    return search_words(node, PLATFORM)


@dataclass
class _Hit:
    item_id: str
    created: int
    raw: dict


@dataclass
class _Window:
    """One created_at_i window read newest first: every valid hit in range, and whether it was read to its end."""

    hits: list[_Hit]
    complete: bool
    pages: int
    malformed: int


def _text(raw: dict, key: str) -> str:
    """A text field of a hit, or "" when it is missing or not text."""
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def hit_to_post(raw: dict, team: frozenset[str]) -> Post:
    """One hit as a Post; fields of the wrong type are left out (a hit without a usable id or time
    raises ValueError)."""
    item_id = str(raw["objectID"])
    tags = raw.get("_tags") if isinstance(raw.get("_tags"), list) else []
    is_comment = raw.get("comment_text") is not None or "comment" in tags
    link = _text(raw, "url") or _text(raw, "story_url") or None
    if is_comment:  # classified on its own words; the thread's title is context, kept in extra
        title = ""
        text = strip_html(_text(raw, "comment_text"))
    else:
        title = strip_html(_text(raw, "title"))
        # A link story's words are its title and link: keep the link where the matcher reads (domains).
        text = "\n".join(p for p in (strip_html(_text(raw, "story_text")), _text(raw, "url")) if p)
    points = _int_or_none(raw.get("points"))
    author = _text(raw, "author") or None
    story_id, parent_id = _int_or_none(raw.get("story_id")), _int_or_none(raw.get("parent_id"))
    extra = {"points": points, "num_comments": _int_or_none(raw.get("num_comments")), "story_id": story_id,
             "parent_id": parent_id, "kind": "comment" if is_comment else "story", "link": link,
             "story_title": strip_html(_text(raw, "story_title")) or None}
    if author and author.casefold() in team:
        extra["by_team"] = True
    return Post(source=PLATFORM, external_id=item_id, text=text, url=ITEM_URL.format(item_id), author=author,
                title=title or None, created_at=datetime.fromtimestamp(int(raw["created_at_i"]), tz=timezone.utc),
                thread_id=str(story_id) if story_id is not None else None,
                parent_id=str(parent_id) if is_comment and parent_id is not None else None,
                reach=None if is_comment else points, extra=extra)


class HackerNewsConnector:
    PLATFORM = PLATFORM

    def __init__(self, source: HackerNewsSource, settings: Any, store=None,
                 session: requests.Session | None = None,
                 clock: Clock = utcnow):
        self.source = source
        self.platform: HackerNewsPlatform = settings.hackernews
        self.session = session or http.bounded_session(self.platform.connect_timeout.total_seconds(),
                                                       self.platform.read_timeout.total_seconds(),
                                                       self.platform.max_bytes)
        self.clock = clock
        _, brand = settings.brand_of(source)
        self.queries = list(dict.fromkeys(source.queries or platform_search(to_hackernews, brand, source)
                                          or default_queries(brand.names + brand.aliases + brand.domains)))
        self.team = frozenset(u.casefold() for u in brand.team.hackernews)
        self.late = int(self.platform.late_window.total_seconds())

    def fetch(self, cursor: dict | None) -> FetchResult:
        states = (cursor or {}).get("queries", {})
        posts: dict[str, Post] = {}
        new_states, malformed, skipped = {}, 0, []
        for query in self.queries:
            hits, new_states[query], bad = self._poll_query(query, states.get(query))
            malformed += bad
            for hit in hits:
                if hit.item_id not in posts:
                    try:
                        posts[hit.item_id] = hit_to_post(hit.raw, self.team)
                    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                        skipped.append(f"item {hit.item_id[:20]}: {type(exc).__name__}")
        warnings = []
        if malformed and not (cursor or {}).get("malformed"):
            warnings.append(f"Hacker News search returned {malformed} items without objectID/created_at_i; skipped")
        ordered = sorted(posts.values(), key=lambda p: (p.created_at, int(p.external_id) if p.external_id.isdigit() else 0))
        return FetchResult(ordered, {"queries": new_states, "malformed": bool(malformed)}, warnings=warnings,
                           skipped=skipped)

    # --- one query -------------------------------------------------------------------------------

    def _poll_query(self, query: str, state: dict | None) -> tuple[list[_Hit], dict, int]:
        """New hits of one query and its next cursor state."""
        seen = Seen.from_cursor(state)
        if seen is None:
            # First poll: the newest pages within first_poll_lookback; older history is not read.
            since = int((self.clock() - self.source.first_poll_lookback).timestamp())
            window = self._read(query, None, None, self.platform.initial_pages, since)
            start = Seen.starting_at([(h.item_id, h.created) for h in window.hits], int(self.clock().timestamp()), self.late)
            return window.hits, start.to_cursor(), window.malformed
        budget, found, malformed = self.platform.max_pages, [], 0
        backlog = (state or {}).get("backlog")
        if backlog:
            # The stretch a budget-limited poll left between the cursor and the oldest item it read;
            # what it did read (newer) is in `then`, which becomes the cursor once the stretch is done.
            until, until_ids = int(backlog["until"]), set(backlog["until_ids"])
            then = Seen.from_cursor(backlog["then"])
            window = self._read(query, seen, until, budget)
            budget, malformed = budget - window.pages, window.malformed
            new = [h for h in window.hits if not (h.created == until and h.item_id in until_ids)
                   and h.item_id not in then.ids and not seen.is_known(h.item_id, h.created, self.late)]
            found += new
            then = then.merge(((h.item_id, h.created) for h in new), self.late)
            if window.complete:
                seen, backlog = then.merge(seen.ids.items(), self.late), None
            elif window.hits:
                oldest = min(h.created for h in window.hits)
                ids = {h.item_id for h in window.hits if h.created == oldest} | (until_ids if oldest == until else set())
                backlog = {"until": oldest, "until_ids": sorted(ids), "then": then.to_cursor()}
            else:
                backlog = {**backlog, "then": then.to_cursor()}
        if backlog is None and budget > 0:
            # Everything from the cursor (less the late window) to now.
            window = self._read(query, seen, None, budget)
            malformed += window.malformed
            new = [h for h in window.hits if not seen.is_known(h.item_id, h.created, self.late)]
            found += new
            newer = seen.merge(((h.item_id, h.created) for h in new), self.late)
            if window.complete or not window.hits:
                seen = newer
            else:
                oldest = min(h.created for h in window.hits)
                backlog = {"until": oldest, "until_ids": sorted(h.item_id for h in window.hits if h.created == oldest),
                           "then": newer.to_cursor()}
        out = seen.to_cursor()
        if backlog:
            out["backlog"] = backlog
        return found, out, malformed

    def _read(self, query: str, seen: Seen | None, until: int | None, pages: int, since: int | None = None) -> _Window:
        """Read `seen.lowest_unknown(late) <= created_at_i <= until` (or from `since` when nothing was seen)
        newest first, at most `pages` pages."""
        filters = []
        if seen is not None:
            filters.append(f"created_at_i>={seen.lowest_unknown(self.late)}")
        elif since is not None:
            filters.append(f"created_at_i>={since}")
        if until is not None:
            filters.append(f"created_at_i<={until}")
        hits: dict[str, _Hit] = {}
        malformed = 0
        for page in range(pages):
            data = self._search(query, filters, page)
            page_hits, bad = _valid_hits(data["hits"])
            malformed += bad
            for hit in page_hits:
                hits.setdefault(hit.item_id, hit)  # new items push old ones onto the next page: keep one
            if not data["hits"]:
                return _Window(list(hits.values()), True, page + 1, malformed)
            if page + 1 >= data["nbPages"]:
                # nbPages stops at Algolia's 1000-hit window even when nbHits is larger.
                read_all = (page + 1) * data["hitsPerPage"] >= data["nbHits"]
                return _Window(list(hits.values()), read_all, page + 1, malformed)
        return _Window(list(hits.values()), False, pages, malformed)

    def _search(self, query: str, filters: list[str], page: int) -> dict:
        params = {"query": query, "tags": "(story,comment)" if self.source.comments else "story",
                  "hitsPerPage": self.platform.hits_per_page, "page": page}
        if filters:
            params["numericFilters"] = ",".join(filters)
        what = f"Hacker News search {query!r} page {page}"
        resp = http.get(self.session, f"{self.platform.base_url}/search_by_date", params=params,
                        headers={"User-Agent": self.platform.user_agent, "Accept": "application/json"},
                        connect_timeout=self.platform.connect_timeout.total_seconds(),
                        read_timeout=self.platform.read_timeout.total_seconds(),
                        max_bytes=self.platform.max_bytes, what=what)
        return parse_search(resp.body, what)


def parse_search(body: bytes, what: str) -> dict:
    """The envelope fields we rely on, checked; any other shape is a BAD_PAYLOAD naming the field."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
        raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response has no `hits` list")
    for key in ("nbPages", "nbHits", "hitsPerPage"):
        if not isinstance(data.get(key), int) or isinstance(data.get(key), bool):
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response has no integer `{key}`")
    return data


MAX_EPOCH = 253402300799  # 9999-12-31: a later `created_at_i` is no time a datetime can hold


def _valid_hits(raw_hits: list) -> tuple[list[_Hit], int]:
    hits, bad = [], 0
    for raw in raw_hits:
        item_id = raw.get("objectID") if isinstance(raw, dict) else None
        created = raw.get("created_at_i") if isinstance(raw, dict) else None
        if (not item_id or not isinstance(item_id, (str, int)) or not isinstance(created, int)
                or isinstance(created, bool) or not 0 <= created <= MAX_EPOCH):
            bad += 1
            continue
        hits.append(_Hit(str(item_id), created, raw))
    return hits, bad


PLUGIN = Platform(type=PLATFORM, display="Hacker News", source=HackerNewsSource, connector=HackerNewsConnector,
                  settings_key="hackernews", settings_model=HackerNewsPlatform,
                  team="Hacker News usernames of the team", order=30, search=to_hackernews)
