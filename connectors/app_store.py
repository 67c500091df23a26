"""App Store customer reviews from Apple's public RSS feed (JSON), per app and storefront country.

The feed is most recent first, 50 reviews a page, 10 pages deep, with no "since" parameter. Each
app and country keeps its own cursor (newest `updated` stored, and the review ids stored since a
while before it: reviews appear after moderation, so later than their timestamp), and a poll reads
pages until it passes that cursor, the feed ends or the page budget is spent. New reviews that were
out of reach (more than the pages read hold) are recorded as a gap, never skipped silently.
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
from monitor.configbase import ApiPlatform, Duration, FIRST_POLL_LOOKBACK, Interval, Owned, SLUG
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.records import FetchResult, Gap, Post, within_lookback

PLATFORM = "app_store"
FEED_DEPTH = 10  # pages Apple serves per app and country
_PAGE_IN_HREF = re.compile(r"/page=(\d+)/")


# --- config ------------------------------------------------------------------------------------

class AppStorePlatform(ApiPlatform):
    """Apple's public customer-reviews feed: most recent first, 50 reviews a page, 10 pages at most."""

    base_url: str = Field("https://itunes.apple.com",
                          description="Base URL of Apple's reviews feed (override for a proxy)")
    max_pages: int = Field(10, ge=1, le=10, description="Pages read per app and country per poll")
    initial_pages: int = Field(1, ge=1, le=10, description="Pages read on the first poll of an app and country")
    late_window: Duration = Field(timedelta(hours=2), description="Reviews published up to this long after their "
                                  "timestamp (moderation) are still picked up")


class AppStoreSource(Owned):
    type: Literal["app_store"]
    name: str = Field(pattern=SLUG, description="Unique within the brand; the source id is brand/name")
    apps: list[str] = Field(min_length=1, description="Numeric App Store ids (the digits after /id in the app's URL)")
    countries: list[str] = Field(["us"], min_length=1, description="Storefront country codes such as us, gb, de")
    interval: Interval = Field(timedelta(minutes=30), description="Time between polls")
    require_match: bool = Field(False, description="Reviews of the brand's own app are its mentions even without its name")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll (of a new source, or a new "
                                          "install) stores items published this long ago at most, as backfill")
    needs_reply_at_or_below: int = Field(2, ge=0, le=5, description="Star ratings that need a reply whatever the text says; 0: off")

    @field_validator("apps", mode="before")
    @classmethod
    def _app_ids(cls, values: Any) -> Any:
        """Ids are numbers in YAML more often than not; keep them as strings."""
        if not isinstance(values, list):
            return values
        out = []
        for value in values:
            digits = str(value).strip().removeprefix("id")
            if not digits.isdigit():
                raise ValueError("expected numeric app ids such as 1234567890 (from apps.apple.com/…/id1234567890)")
            out.append(digits)
        return out

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, values: list[str]) -> list[str]:
        out = [v.strip().lower() for v in values]
        if any(not re.match(r"^[a-z]{2}$", v) for v in out):
            raise ValueError("expected two-letter country codes such as us, gb, de")
        return out


@dataclass(frozen=True)
class Review:
    review_id: str
    updated: datetime
    rating: int
    version: str | None
    title: str
    body: str
    author: str | None
    link: str | None

    @property
    def created(self) -> int:
        return int(self.updated.timestamp())


@dataclass(frozen=True)
class Page:
    reviews: list[Review]
    last_page: int | None  # as announced by feed.link rel="last"
    malformed: int


def _label(node, *path: str) -> str | None:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    value = node.get("label") if isinstance(node, dict) else None
    return value if isinstance(value, str) else None


def _link(entry: dict) -> str | None:
    links = entry.get("link")
    for link in links if isinstance(links, list) else [links]:
        href = link.get("attributes", {}).get("href") if isinstance(link, dict) else None
        if isinstance(href, str) and href.startswith(("http://", "https://")):
            return href
    return None


def entry_to_review(entry: dict) -> Review | None:
    """A review entry, or None when a field we need (id, rating 1-5, updated) is missing or unreadable."""
    review_id, rating, updated = _label(entry, "id"), _label(entry, "im:rating"), _label(entry, "updated")
    if not review_id or not rating or not rating.strip().isdigit() or not updated:
        return None
    try:
        when = datetime.fromisoformat(updated.strip())
    except ValueError:
        return None
    if when.tzinfo is None or not 1 <= int(rating) <= 5:
        return None
    return Review(review_id.strip(), when.astimezone(timezone.utc), int(rating), _label(entry, "im:version"),
                  (_label(entry, "title") or "").strip(), (_label(entry, "content") or "").strip(),
                  _label(entry, "author", "name"), _link(entry))


def parse_page(body: bytes, what: str) -> Page:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response is not JSON") from None
    feed = data.get("feed") if isinstance(data, dict) else None
    if not isinstance(feed, dict):
        raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response has no `feed` object")
    entries = feed.get("entry") or []
    if isinstance(entries, dict):  # one entry on the page comes as an object, not a list
        entries = [entries]
    if not isinstance(entries, list):
        raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: `feed.entry` is neither a list nor an object")
    reviews, malformed = [], 0
    for entry in entries:
        if isinstance(entry, dict) and "im:name" in entry:
            continue  # the app's own metadata, first on page 1 for some apps
        review = entry_to_review(entry) if isinstance(entry, dict) else None
        if review is None:
            malformed += 1
        else:
            reviews.append(review)
    return Page(reviews, _last_page(feed), malformed)


def _last_page(feed: dict) -> int | None:
    links = feed.get("link")
    for link in links if isinstance(links, list) else []:
        attributes = link.get("attributes", {}) if isinstance(link, dict) else {}
        match = _PAGE_IN_HREF.search(str(attributes.get("href", ""))) if attributes.get("rel") == "last" else None
        if match:
            return int(match.group(1))
    return None


def review_to_post(review: Review, app_id: str, country: str, needs_reply_at_or_below: int) -> Post:
    stars = "★" * review.rating + "☆" * (5 - review.rating)
    extra = {"rating": review.rating, "version": review.version, "country": country, "app_id": app_id}
    if review.rating <= needs_reply_at_or_below:
        extra["needs_reply_hint"] = f"{review.rating}-star review"
    return Post(source=PLATFORM, external_id=review.review_id, text=review.body,
                url=review.link or f"https://apps.apple.com/{country}/app/id{app_id}?see-all=reviews",
                author=review.author, title=f"{stars} {review.title}".strip(), created_at=review.updated,
                extra=extra)


@dataclass
class _FeedPoll:
    reviews: list[Review]
    seen: Seen
    gap: Gap | None
    malformed: int


class AppStoreConnector:
    PLATFORM = PLATFORM

    def __init__(self, source: AppStoreSource, settings: Any, store=None, session: requests.Session | None = None,
                 clock: Clock = utcnow):
        self.source = source
        self.platform: AppStorePlatform = settings.app_store
        self.session = session or http.bounded_session(self.platform.connect_timeout.total_seconds(),
                                                       self.platform.read_timeout.total_seconds(),
                                                       self.platform.max_bytes)
        self.late = int(self.platform.late_window.total_seconds())
        self.clock = clock

    def fetch(self, cursor: dict | None) -> FetchResult:
        states = (cursor or {}).get("feeds", {})
        posts: dict[str, Post] = {}
        new_states, gaps, malformed = {}, [], 0
        for app_id in self.source.apps:
            for country in self.source.countries:
                key = f"{app_id}/{country}"
                seen = Seen.from_cursor(states.get(key))
                polled = self._poll_feed(app_id, country, seen)
                new_states[key] = polled.seen.to_cursor()
                gaps += [polled.gap] if polled.gap else []
                malformed += polled.malformed
                found = [review_to_post(review, app_id, country, self.source.needs_reply_at_or_below)
                         for review in reversed(polled.reviews)]  # oldest first
                if seen is None:
                    found, gap = within_lookback(found, self.clock() - self.source.first_poll_lookback,
                                                 f"first poll of app {app_id} ({country})")
                    gaps += [gap] if gap else []
                for post in found:
                    posts.setdefault(post.external_id, post)
        warnings = []
        if malformed and not (cursor or {}).get("malformed"):
            warnings.append(f"{malformed} App Store feed entries lacked an id, a 1-5 rating or a date; skipped")
        return FetchResult(list(posts.values()), {"feeds": new_states, "malformed": bool(malformed)},
                           warnings=warnings, gaps=gaps)

    def _poll_feed(self, app_id: str, country: str, seen: Seen | None) -> _FeedPoll:
        pages = self.platform.max_pages if seen else self.platform.initial_pages
        found: dict[str, Review] = {}
        reached = ended = False
        malformed = page_no = 0
        for page_no in range(1, min(pages, FEED_DEPTH) + 1):
            page = parse_page(self._get(app_id, country, page_no),
                              f"App Store reviews of app {app_id} ({country}) page {page_no}")
            malformed += page.malformed
            if not page.reviews:
                ended = True
                break
            for review in page.reviews:
                if seen and review.created < seen.lowest_unknown(self.late):
                    reached = True
                elif not (seen and seen.is_known(review.review_id, review.created, self.late)):
                    found.setdefault(review.review_id, review)  # later pages repeat reviews pushed down
            if reached:
                break
            if page.last_page is not None and page_no >= page.last_page:
                ended = page.last_page < FEED_DEPTH
                break
        new = list(found.values())
        gap = None
        if seen and new and not reached and not ended:
            oldest = min(r.updated for r in new)
            start_at = datetime.fromtimestamp(seen.newest, tz=timezone.utc) if seen.newest else None
            depth = "the feed's 10 pages" if page_no >= FEED_DEPTH else f"{page_no} pages (app_store.max_pages)"
            gap = Gap(start_at, oldest, None, f"app {app_id} ({country}): more new reviews than {depth} hold; "
                                              f"older new ones were not read")
        items = [(r.review_id, r.created) for r in new]
        # A feed that is empty at the start has nothing to skip: the next poll reads all it finds.
        after = seen.merge(items, self.late) if seen else Seen.starting_at(items, 0, self.late)
        return _FeedPoll(new, after, gap, malformed)

    def _get(self, app_id: str, country: str, page: int) -> bytes:
        url = f"{self.platform.base_url}/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json"
        resp = http.get(self.session, url, headers={"User-Agent": self.platform.user_agent, "Accept": "application/json"},
                        connect_timeout=self.platform.connect_timeout.total_seconds(),
                        read_timeout=self.platform.read_timeout.total_seconds(),
                        max_bytes=self.platform.max_bytes, what=f"App Store reviews of app {app_id} ({country}) page {page}")
        return resp.body


PLUGIN = Platform(type=PLATFORM, display="the App Store", source=AppStoreSource, connector=AppStoreConnector,
                  settings_key="app_store", settings_model=AppStorePlatform, order=20)
