"""X (Twitter) API v2 through tweepy's `Client`: recent search and the mentions of the brand's handles.

Why it is built this way (shared/docs/platform-notes.md section 2):
- `Client` has a hard-coded host and no timeout, and ignores `x-rate-limit-remaining`: `ApiSession`
  rewrites the host, adds a timeout and records the rate-limit headers, so we pace ourselves.
- `wait_on_rate_limit` stays off (it hot-loops on a 429 without a future reset): a 429 becomes a
  RATE_LIMITED failure with `retry_after` until `x-rate-limit-reset`, and the daemon reschedules.
- X bills each post read and caps reads per month: reads are counted in the store per app and month,
  and no page is requested that could take the month past the configured cap.
- A poll spanning pages keeps the first page's `newest_id` and moves `since_id` only once the last
  page is in; a poll stopped early (page bound, budget, rate limit) keeps that `newest_id` and the
  oldest id it read in the cursor, and the pipeline stores posts and cursor in one transaction, so
  a crash between pages loses nothing and the next poll reads only what is left.
- Responses are read as raw JSON (`return_type=dict`): ids stay strings, as they are in `meta`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import requests
import tweepy

from connectors.http import deadline_for, network_failure
from connectors.team_replies import ReplyLog, match
from connectors.transport import BoundedSession
from connectors.x.config import XPlatform, XSource
from connectors.x.posts import (EXPANSIONS, MIN_RESULTS, PLATFORM, QUERY_LIMIT, SEARCH_WINDOW, TWEET_FIELDS,
                                TWITTER_HOST, USER_FIELDS, WINDOW_MARGIN, default_query, next_period, parse_time,
                                seen_reply, snowflake_time, stamp, team_handles, team_reply_queries, to_posts,
                                valid_id)
from monitor.core.budgets import API_BUDGETS
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import MAX_RETRY_AFTER, MIN_RETRY_AFTER, FailureKind, SourceFailure
from monitor.core.logs import get_logger
from monitor.core.records import FetchResult, Gap, Post, TeamReply
from connectors.x.search import to_x
from monitor.query import platform_search

log = get_logger(__name__)


# --- HTTP -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: float   # epoch seconds


def reads_key(app: str) -> str:
    """Where the store counts an X app's post reads, per month (`/metrics` reads it too)."""
    return f"x:reads:{app}"


def endpoint_of(url: str) -> str:
    if "/2/tweets/search/recent" in url:
        return "search"
    if "/2/users/by/username/" in url:
        return "users"
    if re.search(r"/2/users/\d+/mentions", url):
        return "mentions"
    return "other"


def rate_limit_reset(value, now: float) -> int | None:
    """`x-rate-limit-reset` (epoch seconds) as a whole epoch 1 s .. 24 h ahead; None when unreadable
    (NaN, inf, not a number). X never asks for longer: a larger value is not taken at its word."""
    try:
        reset = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(reset):
        return None
    return int(min(max(reset, now + MIN_RETRY_AFTER), now + MAX_RETRY_AFTER))


class ApiSession(BoundedSession):
    """What tweepy's Client lacks: our base URL, bounds in time and size, and the `x-rate-limit-*`
    headers kept (the reset normalised first: tweepy itself parses it with `int()`)."""

    def __init__(self, base_url: str, timeout: tuple[float, float], max_bytes: int = 5_000_000):
        super().__init__(timeout=timeout, deadline=deadline_for(*timeout), max_bytes=max_bytes)
        self.base_url = base_url.rstrip("/")
        self.limits: dict[str, RateLimit] = {}

    def request(self, method, url, *args, **kwargs):
        url = url.replace(TWITTER_HOST, self.base_url, 1)
        response = super().request(method, url, *args, **kwargs)
        headers = response.headers
        if "x-rate-limit-reset" in headers:
            reset = rate_limit_reset(headers["x-rate-limit-reset"], time.time())
            if reset is None:
                del headers["x-rate-limit-reset"]
            else:
                headers["x-rate-limit-reset"] = str(reset)
        try:
            limit = RateLimit(int(headers["x-rate-limit-limit"]), int(headers["x-rate-limit-remaining"]),
                              float(headers["x-rate-limit-reset"]))
        except (KeyError, ValueError):
            return response
        self.limits[endpoint_of(url)] = limit
        API_BUDGETS.publish("x", endpoint_of(url), limit.remaining, limit.reset)
        return response


class _Stop(Exception):
    """This stream cannot read another page now (rate limit, read budget); what it read is kept."""

    def __init__(self, failure: SourceFailure, budget: bool = False):
        super().__init__(failure.message)
        self.failure = failure
        self.budget = budget


def _body(exc: tweepy.HTTPException) -> dict:
    try:
        body = exc.response.json()
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def _users(body: dict) -> dict[str, dict]:
    """`includes.users` by id: where a tweet's author handle, name and followers come from."""
    includes = body.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    return {str(u.get("id")): u for u in users if isinstance(u, dict)} if isinstance(users, list) else {}


def _error_text(errors) -> str:
    """The first of X's `errors` in words, whatever its shape."""
    first = errors[0] if isinstance(errors, list) and errors else errors
    detail = first.get("detail", first) if isinstance(first, dict) else first
    return _short(str(detail))


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the connector --------------------------------------------------------------------------------

@dataclass
class _Read:
    """What one poll of one stream (the search, or one handle's mentions) collected."""

    posts: list[Post]
    state: dict
    gap: Gap | None = None
    skipped: list[str] = field(default_factory=list)


class XConnector:
    PLATFORM = PLATFORM

    def __init__(self, source: XSource, settings: Any, store=None, clock: Clock = utcnow):
        if settings.x is None:
            raise ValueError("an X source needs the top-level `x:` settings")
        self.source = source
        self.platform: XPlatform = settings.x
        self.store = store
        self.brand_id, self.brand = settings.brand_of(source)
        self.source_id = f"{self.brand_id}/{source.name}"
        self.query = (source.query or platform_search(to_x, self.brand, source, QUERY_LIMIT)
                      or default_query(self.brand))
        self.team = team_handles(self.brand)
        self.clock = clock
        self.session = ApiSession(self.platform.base_url, (self.platform.connect_timeout.total_seconds(),
                                                           self.platform.read_timeout.total_seconds()),
                                  self.platform.max_bytes)
        self.client = tweepy.Client(bearer_token=self.platform.bearer_token.get_secret_value(),
                                    return_type=dict, wait_on_rate_limit=False)
        self.client.session = self.session
        self._disabled: SourceFailure | None = None
        self._blocked: dict[str, float] = {}   # endpoint -> epoch until which a 429 told us to wait
        self._replies = ReplyLog()             # what the team accounts replied, read so far

    # --- reads budget and pacing ---

    @property
    def _usage_key(self) -> str:
        return reads_key(self.platform.app)

    def _page_size(self, endpoint: str, now: datetime) -> int:
        """The largest page that cannot take this month's reads past the cap."""
        if self.store is None:
            return self.platform.max_results
        cap = self.platform.monthly_read_cap
        used = self.store.get_usage(self._usage_key, f"{now:%Y-%m}")
        size = min(self.platform.max_results, cap - used)
        if size < MIN_RESULTS[endpoint]:
            resume = next_period(now)
            raise _Stop(SourceFailure(
                FailureKind.RATE_LIMITED,
                f"X read budget exhausted: {used:,} of {cap:,} post reads used in {now:%Y-%m} (app "
                f"{self.platform.app}, x.monthly_read_cap); paused until {resume:%Y-%m-%d %H:%M} UTC",
                (resume - now).total_seconds()), budget=True)
        return size

    def _spend(self, count: int, now: datetime) -> None:
        if count and self.store is not None:
            self.store.add_usage(self._usage_key, f"{now:%Y-%m}", count)

    def _pace(self, endpoint: str, now: datetime) -> None:
        """Do not call an endpoint whose window is used up: wait for its reset instead."""
        epoch = now.timestamp()
        until = self._blocked.get(endpoint, 0.0)
        limit = self.session.limits.get(endpoint)
        if limit is not None and limit.remaining <= 0:
            until = max(until, limit.reset)
        if until > epoch:
            resume = datetime.fromtimestamp(until, timezone.utc)
            raise _Stop(SourceFailure(FailureKind.RATE_LIMITED, f"X {endpoint} rate limit used up until "
                                      f"{resume:%H:%M:%S} UTC", max(until - epoch, 1.0)))

    # --- calls ---

    def _call(self, endpoint: str, now: datetime, fn: Callable, *args, **kwargs) -> dict:
        """One API call; every failure comes back classified, a 429 as `_Stop`."""
        what = f"X {endpoint} for {self.source_id}"
        try:
            body = fn(*args, **kwargs)
        except tweepy.TooManyRequests as exc:
            reset = exc.reset_time
            if reset is not None:
                self._blocked[endpoint] = float(reset)
            wait = max(reset - now.timestamp(), 1.0) if reset is not None else None
            capped = "usage-capped" in str(_body(exc).get("type", ""))
            raise _Stop(SourceFailure(
                FailureKind.RATE_LIMITED,
                f"{what}: " + ("X says the app's monthly post cap is used up (HTTP 429 usage-capped)" if capped
                               else "HTTP 429 Too Many Requests") + (f", retry in {wait:.0f} s" if wait else ""),
                wait)) from None
        except tweepy.Unauthorized:
            self._disabled = SourceFailure(FailureKind.AUTH, f"{what}: X rejected the bearer token (HTTP 401): "
                                           "check x.bearer_token; source disabled until mentionwatch restarts")
            raise self._disabled from None
        except tweepy.Forbidden as exc:
            body = _body(exc)
            if body.get("reason") == "client-not-enrolled":
                self._disabled = SourceFailure(
                    FailureKind.AUTH,
                    f"{what}: the X app's access level does not include this endpoint (HTTP 403 client-not-enrolled): "
                    "recent search and mentions timelines need an app inside a Project on the Basic plan or "
                    "higher; source disabled until the config is reloaded or mentionwatch restarts")
                raise self._disabled from None
            detail = _short(str(body.get("detail") or exc))
            raise SourceFailure(FailureKind.AUTH, f"{what}: HTTP 403 ({detail})") from None
        except tweepy.BadRequest as exc:
            raise self._bad_request(what, exc) from None
        except tweepy.NotFound:
            raise SourceFailure(FailureKind.GONE, f"{what}: HTTP 404") from None
        except tweepy.TwitterServerError as exc:
            raise SourceFailure(FailureKind.UNAVAILABLE, f"{what}: HTTP {exc.response.status_code}") from None
        except tweepy.HTTPException as exc:
            raise SourceFailure(FailureKind.UNAVAILABLE, f"{what}: HTTP {exc.response.status_code}") from None
        except requests.exceptions.JSONDecodeError:
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: the answer is not JSON") from None
        except requests.RequestException as exc:
            raise network_failure(exc, what) from None
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            # tweepy reads error bodies (`errors`, `detail`) assuming their shape
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: unreadable answer ({type(exc).__name__})") from None
        if not isinstance(body, dict):
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: expected a JSON object")
        return body

    def _bad_request(self, what: str, exc: tweepy.BadRequest) -> SourceFailure:
        body = _body(exc)
        errors = body.get("errors")
        errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        message = _short("; ".join(str(e.get("message")) for e in errors if e.get("message"))
                         or str(body.get("detail") or "invalid request"))
        if any(isinstance(e.get("parameters"), dict) and "query" in e["parameters"] for e in errors):
            where = (f"brands.{self.brand_id}.sources ({self.source.name}).query" if self.source.query
                     else f"the query built from brand {self.brand_id}'s terms")
            return SourceFailure(FailureKind.GONE, f"brand {self.brand_id}: X rejected the search query "
                                 f"{_short(self.query)!r} (HTTP 400: {message}); fix {where}")
        return SourceFailure(FailureKind.GONE, f"{what}: X rejected the request (HTTP 400: {message})")

    def _page(self, endpoint: str, now: datetime, state: dict, token: str | None, size: int,
              user_id: str | None) -> dict:
        params = {"max_results": size, "expansions": EXPANSIONS, "tweet_fields": TWEET_FIELDS,
                  "user_fields": USER_FIELDS}
        if state.get("since_id"):
            params["since_id"] = state["since_id"]
        elif state.get("start_time"):
            params["start_time"] = state["start_time"]
        if state.get("until_id"):
            params["until_id"] = state["until_id"]
        if endpoint == "search":
            return self._call(endpoint, now, self.client.search_recent_tweets, self.query,
                              **params, **({"next_token": token} if token else {}))
        return self._call(endpoint, now, self.client.get_users_mentions, user_id,
                          **params, **({"pagination_token": token} if token else {}))

    def _user_id(self, handle: str, users: dict, now: datetime) -> str:
        """A handle's user id, looked up once and then kept in the cursor."""
        if handle in users:
            return users[handle]
        self._pace("users", now)
        body = self._call("users", now, self.client.get_user, username=handle)
        data = body.get("data")
        if not isinstance(data, dict) or not valid_id(data.get("id")):
            raise SourceFailure(FailureKind.GONE, f"brand {self.brand_id}: X account @{handle} not found "
                                f"(check brands.{self.brand_id}.handles)")
        users[handle] = str(data["id"])
        log.info("source %s: X account @%s is user id %s", self.source_id, handle, users[handle])
        return users[handle]

    # --- fetch ---

    def fetch(self, cursor: dict | None) -> FetchResult:
        if self._disabled is not None:
            raise SourceFailure(self._disabled.kind, self._disabled.message)
        now = self.clock()
        cursor = dict(cursor or {})
        users = dict(cursor.get("users") or {})
        streams = dict(cursor.get("streams") or {})
        plan = ([("search", "search", None)] if self.source.search else []) + (
            [(f"mentions:{h.lstrip('@').casefold()}", "mentions", h.lstrip("@")) for h in self.brand.handles]
            if self.source.mentions else [])
        posts: dict[str, Post] = {}
        gaps: list[Gap] = []
        stopped: list[_Stop] = []
        skipped: list[str] = []
        for key, endpoint, handle in plan:
            try:
                user_id = self._user_id(handle.casefold(), users, now) if handle else None
                label = f"the mentions of @{handle}" if handle else "the X search"
                read = self._read(endpoint, streams.get(key) or {}, now, user_id, label)
            except _Stop as stop:
                stopped.append(stop)
                continue
            streams[key] = read.state
            skipped += read.skipped
            for post in read.posts:
                posts.setdefault(post.external_id, post)
            if read.gap:
                gaps.append(read.gap)
        if stopped and len(stopped) == len(plan):
            first = min(stopped, key=lambda s: (not s.budget, s.failure.retry_after or 0))
            raise first.failure
        log.debug("source %s: %d posts from X", self.source_id, len(posts))
        return FetchResult(list(posts.values()), {"users": users, "streams": streams}, gaps=gaps, skipped=skipped)

    def _read(self, endpoint: str, state: dict, now: datetime, user_id: str | None, label: str) -> _Read:
        """Read one stream's new posts, newest first, up to the page bound.

        `state` holds the lower bound, `since_id` (or `start_time` when there is no id to start from).
        A walk cut short by the page bound, the budget or the rate limit also holds the first page's
        `newest_id` and `until_id`, the oldest id read: the next poll reads the ids in between. An
        `until_id` rather than the `next_token` because a token is tied to its exact `since_id`, which
        X refuses once it is older than 7 days.
        """
        state = dict(state)
        if endpoint == "search" and state.get("query") not in (None, self.query):
            state = {"since_id": state.get("since_id"), "start_time": state.get("start_time"), "started": True}
        gap = self._window(state, now) if endpoint == "search" else None
        first = not state.get("started")
        if first and not (state.get("since_id") or state.get("start_time")):
            lookback = max(now - self.source.first_poll_lookback, now - SEARCH_WINDOW + WINDOW_MARGIN)
            state["start_time"] = stamp(lookback)  # a first poll reads first_poll_lookback of history, no more
        limit = self.platform.initial_pages if first else self.platform.max_pages
        newest, oldest = state.get("newest_id"), state.get("until_id")
        token: str | None = None
        posts: list[Post] = []
        skipped: list[str] = []
        pages, done = 0, False
        while True:
            try:
                self._pace(endpoint, now)
                size = self._page_size(endpoint, now)
                body = self._page(endpoint, now, state, token, size, user_id)
            except _Stop:
                if pages == 0:
                    raise
                break
            pages += 1
            if "data" not in body and "meta" not in body and body.get("errors"):
                raise SourceFailure(FailureKind.GONE, f"X {endpoint} for {self.source_id}: "
                                    f"{_error_text(body['errors'])}")
            data = body.get("data")
            data = data if isinstance(data, list) else []
            self._spend(len(data), now)
            page_posts, page_skipped = to_posts(data, _users(body), self.team)
            posts += page_posts
            skipped += page_skipped
            read_ids = [i for i in (valid_id(t.get("id")) for t in data if isinstance(t, dict)) if i]
            oldest = min(read_ids, key=int, default=oldest)
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            newest = newest or valid_id(meta.get("newest_id"))
            token = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
            if not token:
                done = True
                break
            if pages >= limit:
                break
        keep = {"query": self.query, "started": True} if endpoint == "search" else {"started": True}
        if done and newest:
            return _Read(posts, {**keep, "since_id": newest}, gap, skipped)
        if done:
            lower = ({"since_id": state["since_id"]} if state.get("since_id")
                     else {"start_time": stamp(now - WINDOW_MARGIN)})
            return _Read(posts, {**keep, **lower}, gap, skipped)
        if first:
            read_back_to = min((p.created_at for p in posts if p.created_at), default=now)
            return _Read(posts, {**keep, "since_id": newest}, gap or Gap(
                now - SEARCH_WINDOW if endpoint == "search" else None, read_back_to, None,
                f"first poll of {label}: older posts were not read "
                f"(x.initial_pages = {self.platform.initial_pages})"), skipped)
        lower = {k: state[k] for k in ("since_id", "start_time") if state.get(k)}
        return _Read(posts, {**keep, **lower, "until_id": oldest, "newest_id": newest}, gap, skipped)

    def _window(self, state: dict, now: datetime) -> Gap | None:
        """Recent search reaches back 7 days and X refuses an older `since_id`: move the lower bound to
        the window's edge and record what fell out of it (also the rest of an unfinished walk)."""
        edge = now - SEARCH_WINDOW + WINDOW_MARGIN
        lower = snowflake_time(state["since_id"]) if state.get("since_id") else parse_time(state.get("start_time"))
        if lower is None or lower >= edge:
            return None
        reason = ("older than X's 7-day recent search window: posts from the last poll that reached X to "
                  "the window's start could not be fetched")
        until = state.get("until_id")
        if until and snowflake_time(until) <= edge:
            newest = state.get("newest_id")
            state.clear()
            state.update({"since_id": newest, "started": True} if newest else {"start_time": stamp(edge),
                                                                              "started": True})
            return Gap(lower, snowflake_time(until), None, reason)
        state.pop("since_id", None)
        state.update({"start_time": stamp(edge), "started": True})
        return Gap(lower, edge, None, reason)

    # --- team replies ---

    def find_team_replies(self, awaiting: list) -> list[TeamReply]:
        """Which waiting mentions the brand's accounts answered (a reply in the mention's conversation).

        One search for the team's own replies (`(from:a OR from:b) is:reply`) covers every waiting
        mention at once, whatever their number; each call reads only replies newer than the last, unless a
        mention older than what was read came in (then from that mention on, within X's 7-day window).
        Within the read budget and the rate limit: a read that cannot continue keeps what it read.
        """
        if self._disabled is not None or not self.team:
            return []
        mine = [m for m in awaiting if m.source == PLATFORM and not (m.extra or {}).get("by_team")]
        if not mine:
            return []
        now = self.clock()
        edge = now - SEARCH_WINDOW + WINDOW_MARGIN
        oldest = max(min(m.created_at or snowflake_time(m.external_id) for m in mine), edge)
        if not self._replies.covers(oldest):
            self._replies.restart(oldest)
        self._replies.forget_before(oldest)
        for query in team_reply_queries(self.team):
            self._read_team_replies(query, now, edge)
        return match(mine, self._replies, PLATFORM)

    def _read_team_replies(self, query: str, now: datetime, edge: datetime) -> None:
        """Page through the team's replies since this query's cursor (or since the log's start). A walk
        cut short (page bound, read budget, rate limit) keeps the oldest id it read, and the next call
        reads the rest below it first, so a long stretch is read over a few polls, never again from the top."""
        seen = self._replies
        state = seen.cursor.get(query) or {}
        since_id = state.get("since_id")
        lower = ({"since_id": since_id} if since_id and snowflake_time(since_id) >= edge
                 else {"start_time": stamp(max(seen.covered_from or edge, edge))})
        keep = {"since_id": lower["since_id"]} if "since_id" in lower else {}
        oldest, newest = state.get("until_id"), state.get("newest")
        token = None
        for _ in range(self.platform.max_pages):
            try:
                self._pace("search", now)
                size = self._page_size("search", now)
                body = self._call("search", now, self.client.search_recent_tweets, query, max_results=size,
                                  expansions=EXPANSIONS, tweet_fields=TWEET_FIELDS, user_fields=USER_FIELDS,
                                  **lower, **({"until_id": state["until_id"]} if state.get("until_id") else {}),
                                  **({"next_token": token} if token else {}))
            except _Stop:
                break
            data = [t for t in body.get("data") or [] if isinstance(t, dict)]
            self._spend(len(data), now)
            users = _users(body)
            replies, _ = to_posts(data, users, self.team)  # malformed ones are judged alone and left out
            seen.add([seen_reply(post) for post in replies])
            oldest = min([p.external_id for p in replies] + ([oldest] if oldest else []), key=int, default=None)
            meta = body.get("meta") or {}
            newest = newest or meta.get("newest_id")
            token = meta.get("next_token")
            if not token:
                seen.cursor[query] = {"since_id": str(newest)} if newest else keep
                return
        if oldest:
            seen.cursor[query] = {**keep, "until_id": oldest, **({"newest": newest} if newest else {})}
