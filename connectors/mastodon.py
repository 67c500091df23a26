"""Mastodon posts from the public hashtag timelines of the instances a source lists.

Mastodon has no global index: each instance shows what it knows (its users' posts and what its
users follow). A source reads `/api/v1/timelines/tag/:hashtag` on each instance for each of the
brand's hashtags, paging forward with `min_id` from a cursor per instance and hashtag, so nothing
between two polls is skipped (at most `max_pages` pages per poll; the rest waits). A post is stored
under its `uri`, the same on every instance, so one seen on two instances (or boosted) is stored
once. Every instance has its own request budget, read from `X-RateLimit-Remaining` /
`X-RateLimit-Reset`: an instance with none left is not called until its reset, and a 429 pauses it
the same way, without failing the other instances.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import Field, field_validator

from connectors import http
from connectors.registry import Platform
from connectors.text import strip_html
from monitor.configbase import (ConfigProblem, Duration, FIRST_POLL_LOOKBACK, HttpPlatform, Interval, Owned, SLUG,
                                http_base_url)
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.logs import get_logger
from monitor.core.records import FetchResult, Post, within_lookback

PLATFORM = "mastodon"
log = get_logger(__name__)
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)+(:\d{1,5})?$", re.I)
_TAG = re.compile(r"^\w{1,100}$")


# --- config ------------------------------------------------------------------------------------

class MastodonPlatform(HttpPlatform):
    """How every Mastodon source reads its instances."""

    page_size: int = Field(40, ge=1, le=40, description="Statuses per request (Mastodon's maximum is 40)")
    max_pages: int = Field(3, ge=1, le=20, description="Pages per hashtag per instance per poll; the rest waits")
    reserve: int = Field(10, ge=0, description="Requests left unused in each instance's rate-limit window")


def instance_url(value: str) -> str:
    """`mastodon.social` or `https://mastodon.social` -> `https://mastodon.social`; http:// only as given."""
    value = value.strip().rstrip("/")
    if value.startswith(("http://", "https://")):
        return http_base_url(value)
    if not _HOST.match(value):
        raise ValueError("expected an instance host name such as mastodon.social, or its https:// URL")
    return "https://" + value


class MastodonSource(Owned):
    type: Literal["mastodon"]
    name: str = Field(pattern=SLUG)
    instances: list[str] = Field(min_length=1, description="Instances whose hashtag timelines are read")
    hashtags: list[str] = Field([], description="Hashtags to read (without #); default: the brand's hashtags")
    interval: Interval = timedelta(minutes=2)
    require_match: bool = True
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll stores posts published "
                                          "this long ago at most, as backfill")

    @field_validator("instances")
    @classmethod
    def _instances(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(instance_url(v) for v in values))

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, values: list[str]) -> list[str]:
        out = [v.strip().lstrip("#") for v in values]
        bad = [v for v in out if not _TAG.match(v)]
        if bad:
            raise ValueError(f"expected hashtags of letters, digits and _ (got {bad[0]!r})")
        return out


def check_sources(brands, sections) -> None:
    """A Mastodon source reads hashtag timelines: it needs hashtags, its own or the brand's."""
    idle = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources
            if s.type == PLATFORM and not s.hashtags and not b.hashtags]
    if idle:
        raise ValueError(f"Mastodon source {', '.join(idle)} has no hashtags to read: list `hashtags:` on the "
                         "source or the brand (Mastodon has no network-wide search)")


# --- statuses -> posts ----------------------------------------------------------------------------

def status_to_post(status: dict, instance: str, team: frozenset[str]) -> Post:
    """A status (or the original of a boost) as a Post; KeyError/TypeError/ValueError when it is not one."""
    if isinstance(status.get("reblog"), dict):
        status = status["reblog"]
    uri, content, account = status["uri"], status["content"], status["account"]
    if not isinstance(uri, str) or not isinstance(content, str) or not isinstance(account, dict):
        raise TypeError("uri, content or account of the wrong type")
    acct = account.get("acct") if isinstance(account.get("acct"), str) else None
    if acct and "@" not in acct:  # a local account: its home is the account's URL's host, else this instance
        home = account.get("url") if isinstance(account.get("url"), str) else instance
        acct = f"{acct}@{urlsplit(home).netloc or urlsplit(instance).netloc}"
    author = f"@{acct}" if acct else None
    created = datetime.fromisoformat(str(status["created_at"]).replace("Z", "+00:00"))
    followers = account.get("followers_count")
    tags = [t.get("name") for t in status.get("tags") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)]
    extra: dict[str, Any] = {"instance": instance, "id": str(status.get("id")), "tags": tags,
                             "boosts": status.get("reblogs_count"), "replies": status.get("replies_count")}
    if author and author.casefold() in team:
        extra["by_team"] = True
    spoiler = status.get("spoiler_text") if isinstance(status.get("spoiler_text"), str) else ""
    return Post(source=PLATFORM, external_id=uri, text=strip_html(content), title=spoiler or None,
                url=status.get("url") if isinstance(status.get("url"), str) else uri, author=author,
                created_at=created if created.tzinfo else created.replace(tzinfo=timezone.utc),
                parent_id=str(status["in_reply_to_id"]) if status.get("in_reply_to_id") else None,
                reach=followers if isinstance(followers, int) and not isinstance(followers, bool) else None,
                extra=extra)


# --- per-instance budgets --------------------------------------------------------------------------

@dataclass
class _Budget:
    remaining: int | None = None
    reset_at: datetime | None = None


class Budgets:
    """Each instance's rate-limit window as its last response told it, shared by every source."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_instance: dict[str, _Budget] = {}

    def paused_until(self, instance: str, reserve: int, now: datetime) -> datetime | None:
        with self._lock:
            budget = self._by_instance.get(instance)
        if budget is None or budget.reset_at is None or budget.reset_at <= now:
            return None
        return budget.reset_at if budget.remaining is not None and budget.remaining <= reserve else None

    def update(self, instance: str, headers, now: datetime) -> None:
        remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
        try:
            left = int(float(remaining)) if remaining is not None else None
        except ValueError:
            left = None
        try:
            reset_at = datetime.fromisoformat(reset.replace("Z", "+00:00")) if reset else None
        except ValueError:
            reset_at = None
        if reset_at is not None and reset_at.tzinfo is None:
            reset_at = reset_at.replace(tzinfo=timezone.utc)
        with self._lock:
            self._by_instance[instance] = _Budget(left, reset_at)

    def exhaust(self, instance: str, until: datetime) -> None:
        with self._lock:
            self._by_instance[instance] = _Budget(0, until)


BUDGETS = Budgets()


# --- the connector ----------------------------------------------------------------------------------

class MastodonConnector:
    PLATFORM = PLATFORM

    def __init__(self, source: MastodonSource, settings: Any, store=None, session: requests.Session | None = None,
                 clock: Clock = utcnow, budgets: Budgets = BUDGETS):
        self.source = source
        self.platform: MastodonPlatform = settings.mastodon
        self.clock = clock
        self.budgets = budgets
        self.session = session or http.bounded_session(self.platform.connect_timeout.total_seconds(),
                                                       self.platform.read_timeout.total_seconds(),
                                                       self.platform.max_bytes)
        _, brand = settings.brand_of(source)
        self.hashtags = list(dict.fromkeys(source.hashtags or [h.lstrip("#") for h in brand.hashtags]))
        self.team = frozenset(account(a).casefold() for a in brand.team.mastodon)
        self.requests = 0

    def fetch(self, cursor: dict | None) -> FetchResult:
        now = self.clock()
        state = dict((cursor or {}).get("timelines", {}))
        posts: dict[str, Post] = {}
        skipped: list[str] = []
        gaps = []
        for instance in self.source.instances:
            for tag in self.hashtags:
                key = f"{instance}#{tag}"
                if self.budgets.paused_until(instance, self.platform.reserve, now):
                    continue
                new_timeline = state.get(key) is None
                found, state[key], bad = self._timeline(instance, tag, state.get(key), now)
                skipped += bad
                if new_timeline:  # first read (a new source, instance or hashtag): recent posts only
                    found, gap = within_lookback(found, now - self.source.first_poll_lookback,
                                                 f"Mastodon {instance} #{tag}")
                    gaps += [gap] if gap else []
                for post in found:
                    posts.setdefault(post.external_id, post)
        ordered = sorted(posts.values(), key=lambda p: p.created_at or now)
        return FetchResult(ordered, {"timelines": state}, gaps=gaps, skipped=skipped)

    def _timeline(self, instance: str, tag: str, min_id: str | None, now: datetime) -> tuple[list[Post], str | None, list[str]]:
        """New statuses of one hashtag on one instance, paging forward from `min_id`; the new cursor."""
        found, bad = [], []
        for _ in range(self.platform.max_pages if min_id else 1):
            if self.budgets.paused_until(instance, self.platform.reserve, now):
                break
            params = {"limit": self.platform.page_size, **({"min_id": min_id} if min_id else {})}
            page = self._get(instance, f"/api/v1/timelines/tag/{quote(tag, safe='')}", params, now)
            if page is None:
                break
            ids = []
            for status in page:
                sid = status.get("id") if isinstance(status, dict) else None
                if not isinstance(sid, str) or not sid.isdigit():
                    bad.append(f"{instance} #{tag}: status without a numeric id")
                    continue
                ids.append(int(sid))
                try:
                    found.append(status_to_post(status, instance, self.team))
                except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                    bad.append(f"{instance} status {sid[:24]}: {type(exc).__name__}")
            if ids:
                min_id = str(max([int(min_id or 0), *ids]))
            if len(page) < self.platform.page_size:
                break
        return found, min_id, bad

    def _get(self, instance: str, path: str, params: dict, now: datetime) -> list | None:
        what = f"Mastodon {instance}{path}"
        self.requests += 1
        try:
            resp = http.get(self.session, instance + path, params=params,
                            headers={"User-Agent": self.platform.user_agent, "Accept": "application/json"},
                            connect_timeout=self.platform.connect_timeout.total_seconds(),
                            read_timeout=self.platform.read_timeout.total_seconds(),
                            max_bytes=self.platform.max_bytes, what=what)
        except SourceFailure as failure:
            if failure.kind is not FailureKind.RATE_LIMITED:
                raise
            until = now + timedelta(seconds=failure.retry_after or 300)
            self.budgets.exhaust(instance, until)
            log.warning("%s: rate limited until %s; this instance waits, the others go on", instance,
                        f"{until:%H:%M:%S} UTC")
            return None
        self.budgets.update(instance, resp.headers, now)
        try:
            data = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response is not JSON") from None
        if not isinstance(data, list):
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response is not a list of statuses")
        return data


def account(name: str) -> str:
    return name if name.startswith("@") else "@" + name


def config_warnings(settings: Any, loaded: Any, file: str) -> list[ConfigProblem]:
    """`validate`: team accounts must be written `@user@instance` to be recognised on every instance."""
    out = []
    for brand_id, brand in settings.brands.items():
        for entry in brand.team.mastodon:
            if entry.lstrip("@").count("@") != 1:
                out.append(ConfigProblem(file, loaded.lines.get(("brands", brand_id), 1),
                                         f"brands.{brand_id}.team.mastodon", repr(entry),
                                         "an account with its instance: @user@instance.social", warning=True))
    return out


PLUGIN = Platform(type=PLATFORM, display="Mastodon", source=MastodonSource, connector=MastodonConnector,
                  settings_key="mastodon", settings_model=MastodonPlatform,
                  team="Mastodon accounts of the team, as @user@instance", account=account,
                  check=check_sources, warnings=config_warnings, order=65)
