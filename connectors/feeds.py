"""RSS and Atom feeds: Google Alerts, blogs, news, status pages, review-site feeds.

feedparser never fetches here (it has no timeout and no size cap): we download with
`connectors.http.get` and hand it bytes. Entry ids are derived from the configured feed URL,
not the URL we were redirected to, so they stay stable across runs and mirrors.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import feedparser
import requests
from pydantic import Field, field_validator

from connectors import http
from connectors.text import strip_html
from connectors.registry import Platform
from monitor.configbase import Duration, FIRST_POLL_LOOKBACK, HttpPlatform, Interval, Owned, SLUG
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.records import FetchResult, Post, within_lookback

PLATFORM = "feed"


# --- config ------------------------------------------------------------------------------------

class FeedsPlatform(HttpPlatform):
    """Defaults for every RSS/Atom source."""

    max_entries: int = Field(500, gt=0,
                             description="Entries read per fetch at most (newest first as the feed lists them)")


class FeedSource(Owned):
    type: Literal["feed"]
    name: str = Field(pattern=SLUG, description="Unique within the brand; the source id is brand/name")
    url: str = Field(description="RSS or Atom feed URL")
    interval: Interval = Field(timedelta(minutes=15), description="Time between polls")
    require_match: bool = Field(True, description="False: every entry is this brand's mention (e.g. Google Alerts)")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll (of a new source, or a new "
                                          "install) stores items published this long ago at most, as backfill")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+", url):
            raise ValueError("expected an http:// or https:// URL")
        return url


def unwrap_redirect(link: str | None) -> str | None:
    """Google Alerts links point at google.com/url?…&url=<real>; keep the real one."""
    if not link:
        return link
    parts = urlsplit(link)
    if parts.hostname and parts.hostname.endswith("google.com") and parts.path == "/url":
        query = parse_qs(parts.query)
        for key in ("url", "q"):
            if query.get(key, [""])[0].startswith(("http://", "https://")):
                return query[key][0]
    return link


def _when(entry) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=timezone.utc)


def _entry_text(entry) -> str:
    content = entry.get("content") or []
    body = content[0].get("value", "") if content else entry.get("summary", "")
    return strip_html(body or "")


def _parse_floor(value) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def entry_to_post(feed_url: str, entry, feed_title: str | None) -> Post:
    title = strip_html(entry.get("title", "") or "")
    link = unwrap_redirect(entry.get("link"))
    entry_id = entry.get("id") or link or hashlib.sha1(
        f"{title}\n{entry.get('published', '')}".encode()).hexdigest()
    external_id = hashlib.sha1(f"{feed_url}\n{entry_id}".encode()).hexdigest()
    return Post(source=PLATFORM, external_id=external_id, text=_entry_text(entry), url=link,
                author=entry.get("author") or None, title=title or None, created_at=_when(entry),
                extra={"feed": feed_title, "entry_id": entry_id})


class FeedConnector:
    PLATFORM = PLATFORM

    def __init__(self, source: FeedSource, settings: Any, store=None, session: requests.Session | None = None,
                 clock: Clock = utcnow):
        self.source = source
        self.platform: FeedsPlatform = settings.feeds
        self.session = session or http.bounded_session(self.platform.connect_timeout.total_seconds(),
                                                       self.platform.read_timeout.total_seconds(),
                                                       self.platform.max_bytes)
        self.clock = clock

    def fetch(self, cursor: dict | None) -> FetchResult:
        cursor = dict(cursor or {})
        headers = {"User-Agent": self.platform.user_agent, "Accept": feedparser.http.ACCEPT_HEADER,
                   "Accept-Encoding": "gzip, deflate"}
        if cursor.get("etag"):
            headers["If-None-Match"] = cursor["etag"]
        if cursor.get("last_modified"):
            headers["If-Modified-Since"] = cursor["last_modified"]
        resp = http.get(self.session, self.source.url, headers=headers,
                        connect_timeout=self.platform.connect_timeout.total_seconds(),
                        read_timeout=self.platform.read_timeout.total_seconds(),
                        max_bytes=self.platform.max_bytes, what=f"feed {self.source.url}")
        if resp.status == 304:
            return FetchResult([], cursor, not_modified=True)
        parsed = feedparser.parse(io.BytesIO(resp.body), response_headers={
            "content-type": resp.headers.get("content-type", ""), "content-location": self.source.url})
        entries = parsed.get("entries") or []
        if not entries and not parsed.get("version"):
            problem = parsed.get("bozo_exception")
            if resp.body.strip():
                raise SourceFailure(FailureKind.BAD_PAYLOAD,
                                    f"feed {self.source.url}: not a readable RSS/Atom feed ({problem or 'unknown format'})")
        warnings = []
        ill_formed = bool(parsed.get("bozo")) and bool(entries)
        if ill_formed and not cursor.get("ill_formed"):
            warnings.append(f"feed {self.source.url} is ill-formed ({parsed.get('bozo_exception')}); "
                            f"read {len(entries)} entries anyway")
        feed_title = strip_html(parsed.get("feed", {}).get("title", "") or "") or None
        posts, skipped = [], []
        for entry in entries[: self.platform.max_entries]:
            try:
                posts.append(entry_to_post(self.source.url, entry, feed_title))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                skipped.append(f"entry {str(entry.get('id', '?'))[:60]}: {type(exc).__name__}")
        # A first poll keeps first_poll_lookback of history and remembers where that started: a feed
        # lists the same old entries again on every poll, and they must not look new later.
        floor = _parse_floor(cursor.get("floor")) if cursor else self.clock() - self.source.first_poll_lookback
        gaps = []
        if floor is not None:
            posts, gap = within_lookback(posts, floor, f"first poll of feed {self.source.url}")
            gaps += [gap] if gap and not cursor else []
        new_cursor = {"etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified"),
                      "ill_formed": ill_formed, **({"floor": floor.isoformat()} if floor else {})}
        return FetchResult(posts, new_cursor, warnings=warnings, gaps=gaps, skipped=skipped)


PLUGIN = Platform(type=PLATFORM, display="the web", source=FeedSource, connector=FeedConnector,
                  settings_key="feeds", settings_model=FeedsPlatform, order=10)
