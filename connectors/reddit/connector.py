"""Reddit: new posts and new comments of subreddits, and Reddit search sorted by new, through praw.

Every HTTP call praw makes passes `BudgetedRequestor`: a real per-request timeout (praw's `timeout`
never reaches API calls), a `BoundedSession` (total deadline, body cap, JSON depth), the app's shared
request budget, and Reddit's rate-limit headers, which we read and then hide from praw, whose own
limiter would sleep the scheduler thread up to a whole 10-minute window. One `praw.Reddit` (one
OAuth token) serves every source and thread of an app; praw is not thread-safe, so calls take turns.
Listings are read with `Reddit.request` as raw JSON: no lazy attribute fetches, and each page's
`after` and the listing's depth stay visible, which the cursor and the gap record need.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import praw
import prawcore
from praw.exceptions import PRAWException

from connectors.http import deadline_for, retry_after_seconds
from connectors.reddit.budget import RATE_HEADERS, RateBudget, shared_budget
from connectors.reddit.config import RedditPlatform, RedditSource
from connectors.team_replies import ReplyLog, SeenReply, match
from connectors.transport import BodyTooLarge, BoundedSession, DeadlineExceeded, TooDeeplyNested
from monitor.configbase import BrandTerms
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.logs import get_logger
from monitor.core.records import FetchResult, Gap, Post, TeamReply
from connectors.reddit.search import to_reddit
from monitor.query import platform_search

PLATFORM = "reddit"
SITE = "https://www.reddit.com"
TOKEN_PATH = "/api/v1/access_token"
PAGE_SIZE = 100
MAX_PAGES = 10               # Reddit lists about 1,000 items, 100 a page
SEARCH_OVERLAP = 1800.0      # search indexes late: re-read the last half hour, skipping what was seen
QUERY_LIMIT = 512            # Reddit's longest search query
REMOVED = ("[removed]", "[deleted]")
_BASE36 = re.compile(r"[0-9a-z]{1,13}")
_FULLNAME = re.compile(r"t[13]_[0-9a-z]{1,13}")
log = get_logger(__name__)


# --- what a source reads ------------------------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    key: str                 # the listing's entry in the source's cursor
    path: str
    what: str                # for people: "r/acme new posts", "Reddit search"
    subreddit: str | None = None
    by_time: bool = False    # search: ordered by time, not id, and re-read with an overlap
    params: dict = field(default_factory=dict)


def search_queries(brand: BrandTerms, limit: int = QUERY_LIMIT) -> list[str]:
    """The brand's names, aliases and domains as `"a" OR "b"` queries no longer than Reddit allows."""
    terms, seen = [], set()
    for term in brand.names + brand.aliases + brand.domains:
        clean = " ".join(term.replace('"', " ").split())
        if clean and clean.casefold() not in seen:
            seen.add(clean.casefold())
            terms.append(f'"{clean}"')
    queries, current = [], ""
    for term in terms:
        candidate = f"{current} OR {term}" if current else term
        if len(candidate) > limit and current:
            queries.append(current)
            current = term
        else:
            current = candidate
    return queries + [current] if current else queries


def plan_listings(source: RedditSource, brand: BrandTerms) -> list[Listing]:
    if source.what == "posts":
        return [Listing(f"r/{s}/new", f"/r/{s}/new", f"r/{s} new posts", s) for s in source.subreddits]
    if source.what == "comments":
        return [Listing(f"r/{s}/comments", f"/r/{s}/comments", f"r/{s} new comments", s) for s in source.subreddits]
    out = []
    translated = platform_search(to_reddit, brand, source, QUERY_LIMIT)
    for query in [source.query or translated] if source.query or translated else search_queries(brand):
        params = {"q": query, "sort": "new", "t": "all"}
        if not source.subreddits:
            out.append(Listing(f"search:{query}", "/search", "Reddit search", None, True, params))
        for s in source.subreddits:
            out.append(Listing(f"r/{s}/search:{query}", f"/r/{s}/search", f"r/{s} search", s, True,
                               {**params, "restrict_sr": "on"}))
    return out


def team_names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.strip().removeprefix("/").removeprefix("u/").casefold() for n in names if n.strip())


# --- reading one listing ------------------------------------------------------------------------

@dataclass(frozen=True)
class ListingRead:
    children: list[dict]     # new items, newest first
    state: dict
    gap: Gap | None = None


def _id36(fullname: str) -> int:
    return int(fullname.partition("_")[2], 36)


def _when(utc: float) -> datetime:
    return datetime.fromtimestamp(utc, tz=timezone.utc)


def _valid_utc(value: Any) -> bool:
    """A `created_utc` a datetime can hold (a finite number of seconds between 1970 and 9999)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 <= value < 253402300800)


def page_children(page: Any, what: str, skipped: list[str] | None = None) -> tuple[list[dict], str | None]:
    """The usable items of one listing page and its `after`; anything else than a listing is bad payload.
    Each unusable item is left out (and named in `skipped`)."""
    data = page.get("data") if isinstance(page, dict) and page.get("kind") == "Listing" else None
    if not isinstance(data, dict) or not isinstance(data.get("children"), list):
        raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: Reddit answered something other than a listing")
    out = []
    for child in data["children"]:
        item = child.get("data") if isinstance(child, dict) else None
        if (isinstance(item, dict) and child.get("kind") in ("t1", "t3") and isinstance(item.get("id"), str)
                and _BASE36.fullmatch(item["id"]) and _valid_utc(item.get("created_utc"))):
            out.append({**item, "kind": child["kind"], "name": f"{child['kind']}_{item['id']}"})
        else:
            log.debug("%s: skipped an unreadable listing item %.120r", what, child)
            if skipped is not None and not (isinstance(child, dict) and child.get("kind") == "more"):
                item_id = item.get("id") if isinstance(item, dict) else None
                skipped.append(f"{what} item {str(item_id)[:20] if item_id is not None else '?'}: unreadable "
                               "id, kind or created_utc")
    after = data.get("after")
    return out, after if isinstance(after, str) else None


def _initial_state(items: list[dict], now: float, by_time: bool) -> dict:
    if by_time:
        newest = max((i["created_utc"] for i in items), default=now)
        return {"newest_utc": newest, "seen": _recent({i["name"]: i["created_utc"] for i in items}, newest)}
    top = max(items, key=lambda i: _id36(i["name"]), default=None)
    return {"newest": top["name"], "newest_utc": top["created_utc"]} if top else {"newest": None, "newest_utc": now}


def _recent(seen: dict[str, float], newest: float) -> dict[str, float]:
    """What search read within its overlap, at most a listing's depth of it (the cursor stays small)."""
    kept = sorted(((t, n) for n, t in seen.items() if t >= newest - SEARCH_OVERLAP), reverse=True)
    return {n: t for t, n in kept[: PAGE_SIZE * MAX_PAGES]}


def _valid_state(state: Any, by_time: bool) -> bool:
    if not isinstance(state, dict) or not isinstance(state.get("newest_utc"), (int, float)):
        return False
    if by_time:
        return isinstance(state.get("seen"), dict)
    return "newest" in state and (state["newest"] is None or bool(_FULLNAME.fullmatch(str(state["newest"]))))


def _below_cursor(state: dict, by_time: bool) -> Callable[[dict], bool]:
    """Whether an item was read before: at or under the newest id, or for search (ordered by time,
    indexed late) seen already or older than the overlap."""
    if by_time:
        floor, seen = state["newest_utc"] - SEARCH_OVERLAP, state["seen"]
        return lambda i: i["created_utc"] < floor or i["name"] in seen
    if state["newest"]:
        newest = _id36(state["newest"])
        return lambda i: _id36(i["name"]) <= newest
    return lambda i: i["created_utc"] <= state["newest_utc"]


def read_listing(get_page: Callable[[str | None], tuple[list[dict], str | None]], listing: Listing,
                 state: Any, now: float, lookback: float) -> ListingRead:
    """Page from the newest item down to the cursor. A first read takes one page (items younger than
    `lookback`); a listing that ends before reaching the cursor had more than Reddit lists: a gap."""
    if not _valid_state(state, listing.by_time):
        items, _ = get_page(None)
        fresh = [i for i in items if i["created_utc"] >= now - lookback]
        return ListingRead(fresh, _initial_state(items, now, listing.by_time))
    is_old = _below_cursor(state, listing.by_time)
    collected, reached, after = [], False, None
    for _ in range(MAX_PAGES):
        items, after = get_page(after)
        for item in items:
            if is_old(item):
                reached = True  # the rest of this page is still read: search lists late-indexed items here
            else:
                collected.append(item)
        if reached or not after or not items:
            break
    gap = None
    if not reached and len(collected) >= PAGE_SIZE:
        gap = listing_gap(listing, state["newest_utc"], collected)
    return ListingRead(collected, _next_state(state, collected, listing.by_time), gap)


def _next_state(state: dict, collected: list[dict], by_time: bool) -> dict:
    if by_time:
        newest = max([state["newest_utc"], *(i["created_utc"] for i in collected)])
        seen = {**state["seen"], **{i["name"]: i["created_utc"] for i in collected}}
        return {"newest_utc": newest, "seen": _recent(seen, newest)}
    if not collected:
        return dict(state)
    top = max(collected, key=lambda i: _id36(i["name"]))
    return {"newest": top["name"], "newest_utc": top["created_utc"]}


def listing_gap(listing: Listing, since: float, collected: list[dict]) -> Gap:
    """Items between the cursor and the oldest item Reddit still listed, counted at the rate we saw."""
    oldest = min(i["created_utc"] for i in collected)
    span = max(i["created_utc"] for i in collected) - oldest
    estimate = round(len(collected) / span * max(oldest - since, 0)) if span > 0 else None
    return Gap(_when(since), _when(oldest), estimate,
               f"{listing.what}: more new items than Reddit lists (about 1,000, 100 a page); "
               f"poll more often to close the gap")


def to_post(item: dict, team: frozenset[str]) -> Post | None:
    """A listing item as a Post; removed comments have nothing left to read and are skipped."""
    kind, subreddit = item["kind"], item.get("subreddit")
    subreddit = subreddit if isinstance(subreddit, str) else None
    author = item.get("author") if isinstance(item.get("author"), str) and item["author"] != "[deleted]" else None
    extra: dict[str, Any] = {"subreddit": subreddit, "score": item.get("score")}
    if kind == "t3":
        text = item.get("selftext") or ""
        if text in REMOVED or item.get("removed_by_category"):
            text, extra["removed"] = "", True
        thread_id, parent_id = item["name"], None
        title = item.get("title") if isinstance(item.get("title"), str) else None
        permalink = item.get("permalink") or f"/r/{subreddit}/comments/{item['id']}/"
        extra.update(kind="post", num_comments=item.get("num_comments"))
    else:
        text = item.get("body") or ""
        if text in REMOVED:
            return None
        thread_id, parent_id, title = item.get("link_id"), item.get("parent_id"), None
        permalink = item.get("permalink") or f"/r/{subreddit}/comments/{(thread_id or '_')[3:]}/_/{item['id']}/"
        extra.update(kind="comment", thread_title=item.get("link_title"))
    extra.update(thread_id=thread_id, parent_id=parent_id)
    if author and author.casefold() in team:
        extra["by_team"] = True
    # Reddit's JSON escapes &, < and > in titles and markdown bodies; the text we store is what people wrote.
    return Post(source=PLATFORM, external_id=item["name"], text=html.unescape(text), url=SITE + permalink,
                author=author, title=html.unescape(title) if title else None, created_at=_when(item["created_utc"]), thread_id=thread_id, parent_id=parent_id,
                extra=extra)


def first_team_reply(thread: Any, external_id: str, team: frozenset[str]) -> TeamReply | None:
    """The earliest comment by a team account in a `/comments/<id>` answer (the mention's own
    subtree when the mention is a comment), or None."""
    found: list[dict] = []

    def walk(listing: Any) -> None:
        children = listing.get("data", {}).get("children", []) if isinstance(listing, dict) else []
        for child in children:
            data = child.get("data") if isinstance(child, dict) and child.get("kind") == "t1" else None
            if not isinstance(data, dict):
                continue
            author = data.get("author")
            if (isinstance(author, str) and author.casefold() in team and f"t1_{data.get('id')}" != external_id
                    and isinstance(data.get("created_utc"), (int, float))):
                found.append(data)
            walk(data.get("replies"))

    for part in thread[1:] if isinstance(thread, list) else []:
        walk(part)
    if not found:
        return None
    first = min(found, key=lambda d: d["created_utc"])
    link = first.get("permalink") or f"/comments/{first.get('link_id', 't3__')[3:]}/_/{first['id']}/"
    return TeamReply(PLATFORM, external_id, first["author"], _when(first["created_utc"]), SITE + link)


# --- errors -------------------------------------------------------------------------------------

def failure_for(exc: Exception, listing: Listing | None, timeout: float, held_for: float = 0.0) -> SourceFailure:
    """One classification of everything praw and prawcore raise, naming the subreddit when it is one.
    `held_for`: how long the budget holds requests after a 429 (from its headers when it had no Retry-After)."""
    what = listing.what if listing else "Reddit"
    sub = f"r/{listing.subreddit}" if listing and listing.subreddit else None
    if isinstance(exc, prawcore.TooManyRequests):
        wait = retry_after_seconds(exc.retry_after) or held_for or 60.0
        return SourceFailure(FailureKind.RATE_LIMITED, f"{what}: Reddit answered 429 Too Many Requests, retry "
                             f"after {wait:.0f} s", wait)
    if isinstance(exc, prawcore.Redirect) and sub:
        return SourceFailure(FailureKind.GONE, f"{sub} does not exist (Reddit redirects to {exc.path}): check "
                             f"the name in this source's subreddits")
    if isinstance(exc, prawcore.NotFound) and sub:
        return SourceFailure(FailureKind.GONE, f"{sub} was not found ({_reason(exc) or 'HTTP 404'}): it is "
                             f"banned or misspelled; remove it from this source's subreddits")
    if isinstance(exc, prawcore.InsufficientScope):
        return SourceFailure(FailureKind.AUTH, f"{what}: the Reddit app's token lacks the `read` scope", disable=True)
    if isinstance(exc, prawcore.InvalidToken):
        return SourceFailure(FailureKind.AUTH, f"{what}: Reddit rejects the app's access token even after a "
                             f"refresh (HTTP 401): check reddit.client_id and the app's status", disable=True)
    if isinstance(exc, prawcore.Forbidden):
        if sub:
            return SourceFailure(FailureKind.AUTH, f"{sub} is {_reason(exc) or 'private or quarantined'} (HTTP "
                                 f"403): remove it from this source's subreddits or use an account that may read it")
        return SourceFailure(FailureKind.AUTH, f"{what}: HTTP 403 (access denied)")
    if isinstance(exc, prawcore.OAuthException):
        return SourceFailure(FailureKind.AUTH, f"Reddit refused the app's login ({exc.error}): check "
                             f"reddit.username and reddit.password or reddit.refresh_token", disable=True)
    if isinstance(exc, prawcore.BadJSON):
        return SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: Reddit answered HTTP {exc.response.status_code} "
                             f"with a body that is not JSON")
    if isinstance(exc, prawcore.ResponseException):
        status = exc.response.status_code
        if status == 401 and exc.response.url.split("?")[0].endswith(TOKEN_PATH):
            return SourceFailure(FailureKind.AUTH, "Reddit refused the app's credentials (HTTP 401 from the token "
                                 "endpoint): check reddit.client_id and reddit.client_secret", disable=True)
        attempts = " after 3 attempts" if isinstance(exc, prawcore.ServerError) or status == 408 else ""
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: Reddit answered HTTP {status}{attempts}")
    if isinstance(exc, prawcore.RequestException) and isinstance(exc.original_exception,
                                                                  (BodyTooLarge, TooDeeplyNested)):
        return SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: {exc.original_exception}")
    if isinstance(exc, prawcore.RequestException) and isinstance(exc.original_exception, DeadlineExceeded):
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: {exc.original_exception}")
    if isinstance(exc, prawcore.RequestException):
        original = exc.original_exception
        how = (f"no answer within {timeout:g} s" if "Timeout" in type(original).__name__
               else f"connection failed ({type(original).__name__})")
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: {how}, 3 attempts")
    return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: {type(exc).__name__}")


def _reason(exc: prawcore.ResponseException) -> str | None:
    try:
        body = exc.response.json()
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) and len(reason) < 40 else None


# --- the client ---------------------------------------------------------------------------------

class BudgetedRequestor(prawcore.Requestor):
    """Applies the timeout to every request, spends the shared budget on API calls and keeps the
    rate-limit headers for it (praw would sleep on them; a half-formed set makes prawcore raise KeyError)."""

    def __init__(self, *, budget: RateBudget, max_wait: Callable[[], float], **kwargs):
        super().__init__(**kwargs)
        self.budget, self.max_wait = budget, max_wait

    def request(self, method: str, url: str, *args, timeout: float | None = None, **kwargs):
        api = not url.split("?")[0].endswith(TOKEN_PATH)
        if api:
            self.budget.acquire(self.max_wait())
        response = super().request(method, url, *args, timeout=self.timeout, **kwargs)
        if api:
            headers = response.headers
            retry = None
            if response.status_code == 429:
                retry = retry_after_seconds(headers.get("retry-after")) or retry_after_seconds(
                    headers.get("x-ratelimit-reset"))
                # prawcore parses Retry-After with float(): hand it seconds (an HTTP-date would raise)
                headers.pop("retry-after", None)
                if retry is not None:
                    headers["retry-after"] = f"{retry:.0f}"
            self.budget.observe(response.status_code, headers, retry)
            for name in RATE_HEADERS:
                headers.pop(name, None)
            if response.status_code == 401 and "www-authenticate" not in headers:
                raise SourceFailure(FailureKind.AUTH, "Reddit answered HTTP 401 without a www-authenticate header "
                                    "(is a proxy or login page in the way?)")
        return response


class SharedReddit:
    """One `praw.Reddit` per app and credentials, for every source and thread: one OAuth token,
    fetched once and refreshed once. praw is not thread-safe, so calls take turns under a lock; each
    call says how long it may wait for the budget (`max_wait`), which the requestor asks for."""

    def __init__(self, p: RedditPlatform, budget: RateBudget):
        self.lock = threading.Lock()
        self.max_wait: Callable[[], float] = lambda: p.max_wait.total_seconds()
        login: dict[str, str] = {}
        if p.username and p.password:
            login = {"username": p.username, "password": p.password.get_secret_value()}
        elif p.refresh_token:
            login = {"refresh_token": p.refresh_token.get_secret_value()}
        timeout = p.timeout.total_seconds()
        session = BoundedSession(timeout=(timeout, timeout), deadline=deadline_for(timeout, timeout),
                                 max_bytes=p.max_bytes)
        self.reddit = praw.Reddit(
            client_id=p.client_id.get_secret_value(), client_secret=p.client_secret.get_secret_value(),
            user_agent=p.user_agent, oauth_url=p.oauth_url, reddit_url=p.reddit_url, check_for_updates=False,
            check_for_async=False, requestor_class=BudgetedRequestor,
            requestor_kwargs={"timeout": timeout, "budget": budget, "max_wait": lambda: self.max_wait(),
                              "session": session}, **login)

    def request(self, max_wait: Callable[[], float], **kwargs) -> Any:
        with self.lock:
            self.max_wait = max_wait
            return self.reddit.request(**kwargs)


_CLIENTS: dict[str, SharedReddit] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(p: RedditPlatform, budget: RateBudget) -> SharedReddit:
    """The process-wide client of these settings (a reload with other credentials gets a new one)."""
    key = hashlib.sha256(p.model_dump_json().encode() + b"".join(
        s.get_secret_value().encode() + b"\0" for s in (p.client_id, p.client_secret, p.password, p.refresh_token)
        if s is not None)).hexdigest()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = SharedReddit(p, budget)
        return client


@dataclass(frozen=True)
class _ClientHandle:
    """The shared client as one connector uses it: with that connector's budget wait."""

    shared: SharedReddit
    max_wait: Callable[[], float]

    def request(self, **kwargs) -> Any:
        return self.shared.request(self.max_wait, **kwargs)


class RedditConnector:
    PLATFORM = PLATFORM

    def __init__(self, source: RedditSource, settings: Any, store=None, clock: Clock = utcnow):
        if settings.reddit is None:
            raise ValueError(f"Reddit source {source.name} needs the reddit: settings")
        self.source = source
        self.platform: RedditPlatform = settings.reddit
        self.brand_id, brand = settings.brand_of(source)
        self.team = team_names(brand.team.reddit)
        self.teams = {brand_id: team_names(b.team.reddit) for brand_id, b in settings.brands.items()}
        self.listings = plan_listings(source, brand)
        self.budget = shared_budget(self.platform.client_id.get_secret_value(), self.platform.requests_per_minute)
        self.clock = clock
        self._local = threading.local()
        self._reply_due: dict[str, datetime] = {}
        self._replies = ReplyLog()  # what the team users commented, read so far
        self._missing_team: set[str] = set()

    def _max_wait(self) -> float:
        return getattr(self._local, "max_wait", self.platform.max_wait.total_seconds())

    def _reddit(self) -> _ClientHandle:
        """The app's shared client (one token for every source and thread), with this connector's wait."""
        return _ClientHandle(shared_client(self.platform, self.budget), self._max_wait)

    def _get(self, path: str, params: dict, listing: Listing | None) -> Any:
        try:
            return self._reddit().request(method="GET", path=path, params=params)
        except (prawcore.PrawcoreException, PRAWException) as exc:
            raise failure_for(exc, listing, self.platform.timeout.total_seconds(), self.budget.held_for()) from None

    def _page(self, listing: Listing, after: str | None, skipped: list[str] | None = None
              ) -> tuple[list[dict], str | None]:
        params = {**listing.params, "limit": PAGE_SIZE, **({"after": after} if after else {})}
        return page_children(self._get(listing.path, params, listing), listing.what, skipped)

    def fetch(self, cursor: dict | None) -> FetchResult:
        states = (cursor or {}).get("listings")
        states = states if isinstance(states, dict) else {}
        now = self.clock().timestamp()
        lookback = (self.source.first_poll_lookback or self.platform.first_poll_lookback).total_seconds()
        posts, seen, gaps, new_states, skipped = [], set(), [], {}, []
        for listing in self.listings:
            read = read_listing(lambda after: self._page(listing, after, skipped), listing, states.get(listing.key),
                                now, lookback)
            new_states[listing.key] = read.state
            gaps += [read.gap] if read.gap else []
            for item in reversed(read.children):
                try:
                    post = to_post(item, self.team)
                except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                    skipped.append(f"{item.get('name')}: {type(exc).__name__}")
                    continue
                if post is not None and post.external_id not in seen:
                    seen.add(post.external_id)
                    posts.append(post)
        return FetchResult(posts, {"listings": new_states}, gaps=gaps, skipped=skipped)

    def find_team_replies(self, awaiting: list) -> list[TeamReply]:
        """Which waiting mentions the brand's team answered, from spare budget only (a poll never waits).

        First the team users' own comment listings, one request per user whatever the number of waiting
        mentions (a comment in a waiting post's thread, or a reply to a waiting comment, answers it);
        then, for waiting comments, a few subtrees each at most every `reply_recheck`, which also finds
        an answer deeper under the comment.
        """
        now = self.clock()
        mine = [m for m in awaiting if not (m.extra or {}).get("by_team") and m.external_id[:3] in ("t1_", "t3_")]
        self._local.max_wait = 0.0
        try:
            found = self._swept_replies([m for m in mine if getattr(m, "brand", self.brand_id) == self.brand_id],
                                        now)
            answered = {r.external_id for r in found}
            waiting = {m.external_id for m in mine}
            self._reply_due = {k: v for k, v in self._reply_due.items() if k in waiting}
            # A post's whole thread is in the sweep (every comment carries its link_id); a comment's subtree
            # beyond direct replies is not, so only comments get a look at their thread.
            due = [m for m in mine if m.external_id.startswith("t1_") and m.external_id not in answered
                   and self.teams.get(getattr(m, "brand", self.brand_id))
                   and self._reply_due.get(m.external_id, now) <= now]
            for mention in due[: self.platform.reply_checks_per_poll]:
                try:
                    thread = self._thread(mention)
                except SourceFailure:
                    break  # out of spare budget, or Reddit is unwell: the next poll tries again
                self._reply_due[mention.external_id] = now + self.platform.reply_recheck
                reply = first_team_reply(thread, mention.external_id, self.teams[getattr(mention, "brand",
                                                                                          self.brand_id)])
                if reply is not None:
                    found.append(reply)
        finally:
            del self._local.max_wait
        return found

    def _swept_replies(self, mentions: list, now: datetime) -> list[TeamReply]:
        """Read each team user's newest comments (down to what was read before, or to the oldest waiting
        mention) and match them to the mentions on thread and parent ids."""
        if not mentions or not self.team:
            return []
        oldest = min(m.created_at or now for m in mentions)
        if not self._replies.covers(oldest):
            self._replies.restart(oldest)
        self._replies.forget_before(oldest)
        for user in sorted(self.team):
            try:
                self._read_user_comments(user)
            except SourceFailure:
                break  # out of spare budget: the listing is read on the next poll, from where it stopped
        return match(mentions, self._replies, PLATFORM, thread_counts=lambda m: m.external_id.startswith("t3_"))

    def _read_user_comments(self, user: str) -> None:
        """A team user's comments, newest first, until the ones read before (or the log's start)."""
        seen = self._replies
        known = seen.cursor.get(user)
        floor = seen.covered_from.timestamp() if seen.covered_from else 0.0
        listing = Listing(f"u/{user}", f"/user/{user}/comments", f"u/{user}'s comments", params={"sort": "new"})
        after, newest, done = None, None, False
        for _ in range(MAX_PAGES):
            params = {**listing.params, "limit": PAGE_SIZE, **({"after": after} if after else {})}
            try:
                items, after = page_children(self._reddit().request(method="GET", path=listing.path, params=params),
                                             listing.what)
            except (prawcore.NotFound, prawcore.Forbidden, prawcore.Redirect):
                if user not in self._missing_team:
                    self._missing_team.add(user)
                    log.warning("team account u/%s cannot be read (suspended, deleted or misspelled in team.reddit); "
                                "its replies are not seen", user)
                return
            except (prawcore.PrawcoreException, PRAWException) as exc:
                raise failure_for(exc, None, self.platform.timeout.total_seconds()) from None
            newest = newest or (items[0]["name"] if items else None)
            for item in items:
                if item["name"] == known or item["created_utc"] < floor:
                    done = True
                    break
                if item["kind"] == "t1" and isinstance(item.get("author"), str):
                    link = item.get("permalink") or f"/comments/{str(item.get('link_id', 't3__'))[3:]}/_/{item['id']}/"
                    seen.add([SeenReply(item["name"], item.get("link_id"), item.get("parent_id"), item["author"],
                                        _when(item["created_utc"]), SITE + link)])
            if done or not after or not items:
                break
        if newest:
            seen.cursor[user] = newest

    def _thread(self, mention) -> Any:
        """The mention's thread (a post) or subtree (a comment); None when it is gone or closed."""
        external_id = mention.external_id
        params: dict[str, Any] = {"limit": PAGE_SIZE, "depth": 5, "sort": "new"}
        thread_id = external_id if external_id.startswith("t3_") else (mention.extra or {}).get("thread_id")
        if not isinstance(thread_id, str) or not thread_id.startswith("t3_"):
            return None
        if external_id.startswith("t1_"):
            params.update(comment=external_id[3:], context=0)
        try:
            return self._reddit().request(method="GET", path=f"/comments/{thread_id[3:]}", params=params)
        except (prawcore.NotFound, prawcore.Forbidden, prawcore.Redirect):
            return None
        except (prawcore.PrawcoreException, PRAWException) as exc:
            raise failure_for(exc, None, self.platform.timeout.total_seconds()) from None
