"""Bluesky's AppView over XRPC: what Jetstream cannot tell (handles, follower counts, threads) and
what it no longer holds (posts older than its replay window, found again with `searchPosts`).

Every read is a public, keyless `GET /xrpc/<method>` of the AppView (`public.api.bsky.app`). The
AppView's budget is read from its `RateLimit-Limit/Remaining/Reset` headers (reset in epoch
seconds): `reserve` requests are left unused, and none is made while the window is spent or after
a 429 until its reset; a read that cannot be made returns nothing and the caller tries later.
Profiles are read 25 at a time (`getProfiles`' maximum) and kept for `profile_ttl`.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from pydantic import Field

from connectors import http
from monitor.configbase import ApiPlatform, Duration
from monitor.core.budgets import API_BUDGETS, BudgetBoard
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.logs import get_logger

COLLECTION = "app.bsky.feed.post"
PROFILES_PER_CALL = 25
log = get_logger(__name__)


class BlueskyApi(ApiPlatform):
    """The AppView read for handles, reach, team replies and the catch-up after a long outage."""

    base_url: str = Field("https://public.api.bsky.app", description="AppView base URL")
    connect_timeout: Duration = Field(timedelta(seconds=3.05), description="Longest wait for a connection")
    read_timeout: Duration = Field(timedelta(seconds=10), description="Longest wait for the next bytes of an answer")
    reserve: int = Field(10, ge=0, description="Requests left unused in each rate-limit window")
    profile_ttl: Duration = Field(timedelta(days=1), description="How long a handle and follower count are kept")
    profile_cache: int = Field(50_000, ge=100, description="Profiles kept in memory at most")
    search_pages: int = Field(1, ge=1, le=50, description="searchPosts pages per term in a catch-up (logged-out "
                              "clients get the first page only)")
    search_limit: int = Field(100, ge=1, le=100, description="Posts per searchPosts page")
    catchup_requests: int = Field(300, ge=1, description="searchPosts calls one catch-up may make (many brands: "
                                  "the rest of the window stays a partial gap)")
    reply_checks_per_poll: int = Field(10, ge=0, description="getPostThread reads per poll for waiting mentions")
    reply_recheck: Duration = Field(timedelta(minutes=10), description="A waiting mention's thread is read again "
                                    "no sooner than this")


def at_uri(external_id: str) -> str:
    """`did/rkey` (how a post is stored) -> `at://did/app.bsky.feed.post/rkey`."""
    did, _, rkey = external_id.rpartition("/")
    return f"at://{did}/{COLLECTION}/{rkey}"


def external_id(uri: Any) -> str | None:
    """`at://did/app.bsky.feed.post/rkey` -> `did/rkey`; None for anything else."""
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    parts = uri[5:].split("/")
    return f"{parts[0]}/{parts[2]}" if len(parts) == 3 and parts[1] == COLLECTION and parts[2] else None


@dataclass(frozen=True)
class Profile:
    did: str
    handle: str | None
    followers: int | None
    read_at: datetime


class RateWindow:
    """The AppView's rate-limit window as its last answer told it, published on `board` for `/metrics`."""

    def __init__(self, reserve: int, board: BudgetBoard = API_BUDGETS) -> None:
        self.reserve, self.board = reserve, board
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._reset_at: datetime | None = None

    def paused_until(self, now: datetime) -> datetime | None:
        with self._lock:
            if self._reset_at is None or self._reset_at <= now or self._remaining is None:
                return None
            return self._reset_at if self._remaining <= self.reserve else None

    def update(self, headers, now: datetime) -> None:
        try:
            remaining = int(headers["RateLimit-Remaining"])
            reset_at = datetime.fromtimestamp(int(headers["RateLimit-Reset"]), tz=timezone.utc)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            return
        with self._lock:
            self._remaining, self._reset_at = remaining, max(reset_at, now)
        self.board.publish("bluesky", "appview", remaining, max(reset_at, now).timestamp())

    def exhaust(self, until: datetime) -> None:
        with self._lock:
            self._remaining, self._reset_at = 0, until
        self.board.publish("bluesky", "appview", 0, until.timestamp())


class AppView:
    """XRPC reads of one AppView, shared by every Bluesky source of the process."""

    def __init__(self, api: BlueskyApi) -> None:
        self.api = api
        self.window = RateWindow(api.reserve)
        self.session = http.bounded_session(api.connect_timeout.total_seconds(), api.read_timeout.total_seconds(),
                                            api.max_bytes)
        self._lock = threading.Lock()
        self._profiles: OrderedDict[str, Profile] = OrderedDict()   # by DID and by handle
        self._paused_logged: datetime | None = None
        self.requests = 0
        self._trouble: FailureKind | None = None   # logged once per change, not per failed read

    def call(self, method: str, params: dict, now: datetime) -> dict | None:
        """One XRPC query; None when the budget is spent (the caller tries later). Failures raise."""
        until = self.window.paused_until(now)
        if until is not None:
            if self._paused_logged != until:
                self._paused_logged = until
                log.info("Bluesky AppView budget spent until %s; its reads wait", f"{until:%H:%M:%S} UTC")
            return None
        what = f"Bluesky {method}"
        self.requests += 1
        try:
            resp = http.get(self.session, f"{self.api.base_url}/xrpc/{method}", params=params,
                            headers={"User-Agent": self.api.user_agent, "Accept": "application/json"},
                            connect_timeout=self.api.connect_timeout.total_seconds(),
                            read_timeout=self.api.read_timeout.total_seconds(), max_bytes=self.api.max_bytes,
                            what=what, answers=(429,))
        except SourceFailure as failure:
            # a 400 is one post gone, a 401/403 one refused method (search): not the AppView down
            if failure.kind not in (self._trouble, FailureKind.AUTH) and "HTTP 400" not in failure.message:
                self._trouble = failure.kind
                log.warning("Bluesky AppView: %s; handles, reach and team replies wait", failure.message)
            raise
        if resp.status == 429:  # wait for the window's reset it names (else Retry-After, else a minute)
            self.window.update(resp.headers, now)
            until = self.window.paused_until(now) or now + timedelta(
                seconds=http.retry_after_seconds(resp.headers.get("Retry-After"), now) or 60)
            self.window.exhaust(until)
            return None
        if self._trouble is not None:
            self._trouble = None
            log.info("Bluesky AppView answers again")
        self.window.update(resp.headers, now)
        try:
            data = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response is not JSON") from None
        if not isinstance(data, dict):
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response is not an object")
        return data

    # --- profiles ---

    def profiles(self, actors: list[str], now: datetime) -> dict[str, Profile]:
        """The profiles of `actors` (DIDs or handles), from the cache or read in batches of 25, keyed by
        what was asked. Actors the budget did not reach (or the AppView does not know) are left out."""
        out, missing = {}, []
        with self._lock:
            for actor in dict.fromkeys(actors):
                known = self._profiles.get(actor.casefold())
                if known is not None and now - known.read_at < self.api.profile_ttl:
                    out[actor] = known
                else:
                    missing.append(actor)
        for start in range(0, len(missing), PROFILES_PER_CALL):
            batch = missing[start:start + PROFILES_PER_CALL]
            data = self.call("app.bsky.actor.getProfiles", {"actors": batch}, now)
            if data is None:
                break
            for item in data.get("profiles") or []:
                profile = _profile(item, now)
                if profile is None:
                    continue
                self._remember(profile)
                for actor in batch:
                    if actor.casefold() in (profile.did.casefold(), (profile.handle or "").casefold()):
                        out[actor] = profile
        return out

    def _remember(self, profile: Profile) -> None:
        with self._lock:
            for key in filter(None, (profile.did, profile.handle)):
                self._profiles[key.casefold()] = profile
                self._profiles.move_to_end(key.casefold())
            while len(self._profiles) > self.api.profile_cache:
                self._profiles.popitem(last=False)

    # --- search and threads ---

    def search(self, query: str, since: datetime, until: datetime, now: datetime) -> tuple[list[dict], bool]:
        """Posts matching `query` published in [since, until], newest first; whether every page was read."""
        found, cursor = [], None
        for _ in range(self.api.search_pages):
            params = {"q": query, "sort": "latest", "since": _stamp(since), "until": _stamp(until),
                      "limit": self.api.search_limit, **({"cursor": cursor} if cursor else {})}
            try:
                data = self.call("app.bsky.feed.searchPosts", params, now)
            except SourceFailure as failure:
                if failure.kind is not FailureKind.AUTH:
                    raise
                log.info("Bluesky searchPosts refused (%s); the catch-up is left as a gap", failure.message)
                return found, False
            if data is None:
                return found, False
            page = [p for p in data.get("posts") or [] if isinstance(p, dict)]
            found += page
            cursor = data.get("cursor") if isinstance(data.get("cursor"), str) else None
            if len(page) < self.api.search_limit:
                return found, True
            if not cursor:  # a full page and no way on (logged-out clients): the rest is not known
                return found, False
        return found, False

    def thread(self, uri: str, now: datetime) -> dict | None:
        """The post at `uri` with its replies (`getPostThread`); None when not readable now or gone."""
        try:
            data = self.call("app.bsky.feed.getPostThread", {"uri": uri, "depth": 10, "parentHeight": 0}, now)
        except SourceFailure as failure:
            if failure.kind is FailureKind.UNAVAILABLE and "HTTP 400" in failure.message:
                return None  # NotFound: the post was deleted
            raise
        thread = data.get("thread") if data else None
        return thread if isinstance(thread, dict) else None


def replies_in(thread: dict) -> Iterator[dict]:
    """Every post view below a thread view (its replies, their replies, …)."""
    stack = list(thread.get("replies") or [])
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and isinstance(node.get("post"), dict):
            yield node["post"]
            stack.extend(node.get("replies") or [])


def view_event(view: dict) -> dict:
    """A post view (search, thread) in the shape of a Jetstream create event, so one parser reads both."""
    ext = external_id(view.get("uri"))
    if ext is None:
        raise ValueError("not a post URI")
    did, _, rkey = ext.rpartition("/")
    indexed = _parse(view.get("indexedAt")) or _parse((view.get("record") or {}).get("createdAt"))
    time_us = int(indexed.timestamp() * 1_000_000) if indexed else 0
    return {"did": did, "time_us": time_us, "kind": "commit",
            "commit": {"operation": "create", "collection": COLLECTION, "rkey": rkey, "record": view["record"]}}


def _profile(item: Any, now: datetime) -> Profile | None:
    if not isinstance(item, dict) or not isinstance(item.get("did"), str):
        return None
    followers = item.get("followersCount")
    return Profile(item["did"], item.get("handle") if isinstance(item.get("handle"), str) else None,
                   followers if isinstance(followers, int) and not isinstance(followers, bool) else None, now)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_VIEWS: dict[str, AppView] = {}
_VIEWS_LOCK = threading.Lock()


def appview(api: BlueskyApi) -> AppView:
    """The process's one client of `api.base_url` (its budget and profile cache are shared)."""
    with _VIEWS_LOCK:
        found = _VIEWS.get(api.base_url)
        if found is None or found.api != api:
            found = _VIEWS[api.base_url] = AppView(api)
        return found


def search_terms(brands: Any) -> list[str]:
    """searchPosts queries that find every brand's posts by what a search can see: names and aliases
    as phrases, hashtags, link domains and Bluesky handles (`mentions:`)."""
    terms = []
    for brand in brands.values():
        terms += [f'"{name}"' for name in [*brand.names, *brand.aliases]]
        terms += [f"#{tag.lstrip('#')}" for tag in brand.hashtags]
        terms += [f"domain:{domain}" for domain in brand.domains]
        terms += [f"mentions:{handle.lstrip('@')}" for handle in brand.handles if "." in handle]
    return list(dict.fromkeys(terms))


@dataclass(frozen=True)
class Team:
    """The brand's Bluesky accounts, by DID and by handle (both lower case)."""

    dids: frozenset[str]
    handles: frozenset[str]

    def owns(self, author: Any) -> bool:
        if not isinstance(author, dict):
            return False
        return author.get("did") in self.dids or str(author.get("handle", "")).casefold() in self.handles


@dataclass(frozen=True)
class InThread:
    """A mention as the reply matching reads it: its thread is its root post's id (itself for a root)."""

    source: str
    external_id: str
    created_at: datetime | None
    thread_id: str | None
    parent_id: str | None
    extra: dict

    @classmethod
    def of(cls, mention) -> "InThread":
        return cls(mention.source, mention.external_id, mention.created_at,
                   external_id(mention.thread_id) or mention.external_id, mention.parent_id, mention.extra or {})


def team_answer(thread: dict, team: Team, since: datetime | None) -> tuple[str, datetime, str] | None:
    """The first reply by the team below a thread view (responder, when, link), not before `since`."""
    found = []
    for view in replies_in(thread):
        if not team.owns(view.get("author")):
            continue
        when = _parse((view.get("record") or {}).get("createdAt")) or _parse(view.get("indexedAt"))
        ext = external_id(view.get("uri"))
        if when is None or ext is None or (since is not None and when < since):
            continue
        author = view["author"]
        responder = f"@{author['handle']}" if isinstance(author.get("handle"), str) else author["did"]
        did, _, rkey = ext.rpartition("/")
        found.append((responder, when, f"https://bsky.app/profile/{did}/post/{rkey}"))
    return min(found, key=lambda item: item[1], default=None)
