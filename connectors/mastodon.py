"""Mastodon posts from the instances a source lists: public hashtag timelines (optionally streamed),
full-text search and the brand account's mention notifications (with its token).

Mastodon has no global index: each instance shows what it knows (its users' posts and what its
users follow). A source reads `/api/v1/timelines/tag/:hashtag` on each instance for each of the
brand's hashtags, paging forward with `min_id` from a cursor per instance and hashtag, so nothing
between two polls is skipped (at most `max_pages` pages per poll; the rest waits). A post is stored
under its `uri`, the same on every instance, so one seen on two instances (or boosted) is stored
once. Every instance has its own request budget, read from `X-RateLimit-Remaining` /
`X-RateLimit-Reset`: an instance with none left is not called until its reset, and a 429 pauses it
the same way, without failing the other instances.

With the brand account's token for an instance (`access_tokens`), a source can also search that
instance's statuses for the brand's names (`/api/v2/search?type=statuses`: only posts whose authors
opted in, on instances with full-text search) and read the account's mention notifications
(`/api/v1/notifications?types[]=mention`), each with its own `min_id` cursor. `streaming: true`
adds the hashtag streams (connectors/mastodon_stream.py); polling stays the fallback. Team replies
are read from the waiting mentions' `/api/v1/statuses/:id/context`, a few per poll.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from connectors import http, mastodon_stream
from connectors.registry import Platform
from connectors.text import strip_html
from monitor.configbase import (ConfigProblem, Duration, FIRST_POLL_LOOKBACK, HttpPlatform, Interval, Owned, SLUG,
                                http_base_url)
from monitor.core.budgets import API_BUDGETS, BudgetBoard
from monitor.core.clock import Clock, utcnow
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.logs import get_logger
from monitor.core.records import FetchResult, Gap, Post, TeamReply, within_lookback

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
    reply_checks_per_poll: int = Field(10, ge=0, description="Status contexts read per poll for waiting mentions")
    reply_recheck: Duration = Field(timedelta(minutes=10), description="A waiting mention's context is read "
                                    "again no sooner than this")
    stream_recheck: Duration = Field(timedelta(minutes=10), description="A streamed hashtag is also read over "
                                     "REST at least this often, so a socket that stays open but stops delivering "
                                     "delays statuses, never loses them")


def instance_url(value: str) -> str:
    """`mastodon.social` or `https://mastodon.social` -> `https://mastodon.social`; http:// only as given."""
    value = value.strip().rstrip("/")
    if value.startswith(("http://", "https://")):
        return http_base_url(value)
    if not _HOST.match(value):
        raise ValueError("expected an instance host name such as mastodon.social, or its https:// URL")
    return "https://" + value


def _present(token: SecretStr) -> SecretStr:
    """A token that is empty (a `${VAR}` set to nothing) would silently turn search and mentions off."""
    if not token.get_secret_value().strip():
        raise ValueError("expected the account's access token; this one is empty (is its ${VAR} set to nothing?)")
    return token


Instance = Annotated[str, AfterValidator(instance_url)]
Token = Annotated[SecretStr, AfterValidator(_present)]


class MastodonSource(Owned):
    type: Literal["mastodon"]
    name: str = Field(pattern=SLUG, description="Unique within the brand; the source id is brand/name")
    instances: list[Instance] = Field(min_length=1, description="Instances whose hashtag timelines are read")
    hashtags: list[str] = Field([], description="Hashtags to read (without #); default: the brand's hashtags")
    interval: Interval = Field(timedelta(minutes=2), description="Time between polls")
    require_match: bool = Field(True, description="false: every post read is this brand's mention")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll stores posts published "
                                          "this long ago at most, as backfill")
    access_tokens: dict[str, Token] = Field({}, description="The brand account's token per instance (host "
                                                "or URL), from ${VAR}: for search and notifications")
    search: bool = Field(False, description="Search each instance with a token for the brand's names")
    notifications: bool = Field(False, description="Read the mention notifications of the account of each token")
    streaming: bool = Field(False, description="Stream the hashtags (websocket); polling fills any gap")

    @field_validator("instances")
    @classmethod
    def _instances(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))

    @field_validator("access_tokens")
    @classmethod
    def _tokens(cls, values: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {instance_url(k): v for k, v in values.items()}

    @model_validator(mode="after")
    def _tokens_for_listed_instances(self) -> "MastodonSource":
        stray = [k for k in self.access_tokens if k not in self.instances]
        if stray:
            raise ValueError(f"access_tokens: {stray[0]} is not one of this source's instances")
        if (self.search or self.notifications) and not self.access_tokens:
            raise ValueError("search and notifications need the brand account's token: set access_tokens "
                             "(instance: ${VAR})")
        return self

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, values: list[str]) -> list[str]:
        out = [v.strip().lstrip("#") for v in values]
        bad = [v for v in out if not _TAG.match(v)]
        if bad:
            raise ValueError(f"expected hashtags of letters, digits and _ (got {bad[0]!r})")
        return out


def check_sources(brands, sections) -> None:
    """A Mastodon source needs something to read: hashtags (its own or the brand's), search or notifications."""
    idle = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources
            if s.type == PLATFORM and not s.hashtags and not b.hashtags and not (s.search or s.notifications)]
    if idle:
        raise ValueError(f"Mastodon source {', '.join(idle)} has no hashtags to read and neither search nor "
                         "notifications: list `hashtags:` on the source or the brand, or turn on `search` or "
                         "`notifications` with the account's token (Mastodon has no network-wide search)")


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
    """Each instance's rate-limit window as its last response told it, shared by every source, and
    published on `board` (by instance host) for `/metrics`."""

    def __init__(self, board: BudgetBoard = API_BUDGETS) -> None:
        self._lock = threading.Lock()
        self._by_instance: dict[str, _Budget] = {}
        self.board = board

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
        if left is not None:
            self._publish(instance, left, reset_at)

    def exhaust(self, instance: str, until: datetime) -> None:
        with self._lock:
            self._by_instance[instance] = _Budget(0, until)
        self._publish(instance, 0, until)

    def _publish(self, instance: str, left: int, reset_at: datetime | None) -> None:
        self.board.publish(PLATFORM, urlsplit(instance).netloc or instance, left,
                           reset_at.timestamp() if reset_at else None)


BUDGETS = Budgets()
_STREAMING: dict[str, str] = {}   # instance -> its streaming base URL


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
        self.terms = list(dict.fromkeys([*brand.names, *brand.aliases]))
        self.team = frozenset(account(a).casefold() for a in brand.team.mastodon)
        self.requests = 0
        self._synced: dict[str, int] = {}      # timeline key -> stream generation its REST read covered
        self._rest_at: dict[str, datetime] = {}  # timeline key -> when it was last read over REST
        self._no_search: set[str] = set()      # instances whose search answered that it does not exist
        self._checked: dict[str, datetime] = {}  # mention -> when its context was last read

    def _streaming_url(self, instance: str, now: datetime) -> str:
        """Where the instance streams (`configuration.urls.streaming` of `/api/v2/instance`, often another
        host); its own host when it does not say. Asked once per process."""
        known = _STREAMING.get(instance)
        if known is None:
            try:
                data = self._get(instance, "/api/v2/instance", {}, now)
            except SourceFailure as failure:
                log.info("Mastodon %s: streaming URL not read (%s); using its host", instance, failure.message)
                data = None
            urls = ((data or {}).get("configuration") or {}).get("urls") if isinstance(data, dict) else None
            found = urls.get("streaming") if isinstance(urls, dict) else None
            default = instance.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
            known = _STREAMING[instance] = (found.rstrip("/") if isinstance(found, str)
                                            and found.startswith(("ws://", "wss://")) else default)
        return known

    def _token(self, instance: str) -> str | None:
        token = self.source.access_tokens.get(instance)
        return token.get_secret_value() if token else None

    def fetch(self, cursor: dict | None) -> FetchResult:
        now = self.clock()
        state = dict((cursor or {}).get("timelines", {}))
        posts: dict[str, Post] = {}
        skipped: list[str] = []
        gaps: list[Gap] = []
        reads = [(f"{i}#{t}", i, "tag", t) for i in self.source.instances for t in self.hashtags]
        reads += [(f"{i}?{q}", i, "search", q) for i in self.source.instances if self.source.search
                  and self._token(i) and i not in self._no_search for q in self.terms]
        reads += [(f"{i}@mentions", i, "mentions", "") for i in self.source.instances
                  if self.source.notifications and self._token(i)]
        for key, instance, kind, what in reads:
            if self.budgets.paused_until(instance, self.platform.reserve, now):
                continue
            new_read = state.get(key) is None
            found, state[key], bad, gap = self._read(key, instance, kind, what, state.get(key), now)
            skipped += bad
            gaps += [gap] if gap else []
            if new_read:  # first read (a new source, instance, hashtag or term): recent posts only
                found, gap = within_lookback(found, now - self.source.first_poll_lookback,
                                             f"Mastodon {instance} {kind} {what}".rstrip())
                gaps += [gap] if gap else []
            for post in found:
                posts.setdefault(post.external_id, post)
        ordered = sorted(posts.values(), key=lambda p: p.created_at or now)
        newest = max([p.created_at for p in ordered if p.created_at], default=None)
        position = max(filter(None, [newest.isoformat() if newest else None, (cursor or {}).get("newest_at")]),
                       default=None)
        return FetchResult(ordered, {"timelines": state, **({"newest_at": position} if position else {})},
                           gaps=gaps, skipped=skipped)

    def _read(self, key: str, instance: str, kind: str, what: str, min_id: str | None,
              now: datetime) -> tuple[list[Post], str | None, list[str], Gap | None]:
        """One timeline, search or notification list, from `min_id` on; for a streamed hashtag, the
        stream's buffer while it stayed connected since the last REST read."""
        live = (mastodon_stream.stream(self._streaming_url(instance, now), what, self._token(instance),
                                       self.platform.connect_timeout.total_seconds())
                if kind == "tag" and self.source.streaming else None)
        if live is not None and min_id is not None:
            pushed, generation, connected = live.take(int(min_id))
            recent = key in self._rest_at and now - self._rest_at[key] < self.platform.stream_recheck
            if connected and self._synced.get(key) == generation and recent:
                found, bad = self._posts(instance, pushed, f"#{what} stream")
                ids = [int(s["id"]) for s in pushed]
                return found, str(max([int(min_id), *ids])), bad, None
        generation = live.take(int(min_id or 0))[1] if live is not None else None
        if kind == "search":
            found, new_min, bad, gap = self._search(instance, what, min_id, now)
        else:
            path = (f"/api/v1/timelines/tag/{quote(what, safe='')}" if kind == "tag" else "/api/v1/notifications")
            found, new_min, bad, complete = self._page_forward(instance, path, kind, min_id, now)
            gap = None
            if live is not None and complete:
                self._synced[key], self._rest_at[key] = generation, now
        return found, new_min, bad, gap

    def _page_forward(self, instance: str, path: str, kind: str, min_id: str | None,
                      now: datetime) -> tuple[list[Post], str | None, list[str], bool]:
        """New items of a list paged forward from `min_id`: the posts, the new cursor, malformed items, and
        whether it was read to its end (False when the page bound or the budget stopped it)."""
        found, bad = [], []
        params = {"limit": self.platform.page_size, **({"types[]": "mention"} if kind == "mentions" else {})}
        for _ in range(self.platform.max_pages if min_id else 1):
            if self.budgets.paused_until(instance, self.platform.reserve, now):
                return found, min_id, bad, False
            page = self._get(instance, path, {**params, **({"min_id": min_id} if min_id else {})}, now)
            if page is None or not isinstance(page, list):
                if page is not None:
                    raise SourceFailure(FailureKind.BAD_PAYLOAD,
                                        f"Mastodon {instance}{path}: response is not a list of statuses")
                return found, min_id, bad, False
            items = [item for item in page if isinstance(item, dict) and isinstance(item.get("id"), str)
                     and item["id"].isdigit()]
            bad += [f"{instance}{path}: status without a numeric id"] * (len(page) - len(items))
            ids = [int(item["id"]) for item in items]
            statuses = [item if kind == "tag" else item.get("status") for item in items
                        if kind == "tag" or item.get("type") == "mention"]
            more, wrong = self._posts(instance, [s for s in statuses if isinstance(s, dict)], path)
            found += more
            bad += wrong
            if ids:
                min_id = str(max([int(min_id or 0), *ids]))
            if len(page) < self.platform.page_size:
                return found, min_id, bad, True
        return found, min_id, bad, not min_id

    def _search(self, instance: str, term: str, min_id: str | None,
                now: datetime) -> tuple[list[Post], str | None, list[str], Gap | None]:
        """Statuses of `term` newer than `min_id`, a page of 40 at a time (the results are not in id order,
        so pages go by offset; the cursor moves to the newest id read)."""
        found, bad, newest = [], [], int(min_id or 0)
        params = {"q": f'"{term}"', "type": "statuses", "limit": self.platform.page_size,
                  **({"min_id": min_id} if min_id else {})}
        for page_no in range(self.platform.max_pages):
            try:
                data = self._get(instance, "/api/v2/search", {**params, "offset": page_no * self.platform.page_size},
                                 now)
            except SourceFailure as failure:
                if failure.kind not in (FailureKind.GONE, FailureKind.BAD_PAYLOAD):
                    raise
                self._no_search.add(instance)
                log.info("Mastodon %s has no status search (%s); its search is skipped", instance, failure.message)
                return found, min_id, bad, None
            if data is None:
                return found, str(newest) if newest else min_id, bad, None
            statuses = data.get("statuses") if isinstance(data, dict) else None
            if not isinstance(statuses, list):
                raise SourceFailure(FailureKind.BAD_PAYLOAD, f"Mastodon {instance} search: no statuses list")
            more, wrong = self._posts(instance, [s for s in statuses if isinstance(s, dict)], "search")
            found += more
            bad += wrong
            newest = max([newest, *(int(s["id"]) for s in statuses if str(s.get("id", "")).isdigit())])
            if len(statuses) < self.platform.page_size:
                return found, str(newest) if newest else min_id, bad, None
        return found, str(newest), bad, Gap(None, now, None, f"Mastodon {instance} search {term!r}: more results "
                                            f"than {self.platform.max_pages} pages; the older ones were not read")

    def _posts(self, instance: str, statuses: list[dict], what: str) -> tuple[list[Post], list[str]]:
        found, bad = [], []
        for status in statuses:
            try:
                found.append(status_to_post(status, instance, self.team))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                bad.append(f"{instance} {what} status {str(status.get('id'))[:24]}: {type(exc).__name__}")
        return found, bad

    def find_team_replies(self, awaiting: list) -> list[TeamReply]:
        """Which waiting mentions the team answered: a team post of this poll replying to one, else the
        team's replies among a mention's descendants (`/statuses/:id/context`), a few mentions per poll."""
        if not self.team:
            return []
        now = self.clock()
        mine = [m for m in awaiting if m.source == PLATFORM and (m.extra or {}).get("instance")]
        by_parent = {(m.extra["instance"], m.parent_id): m for m in mine if m.extra.get("by_team") and m.parent_id}
        found, rest = [], []
        for mention in (m for m in mine if not m.extra.get("by_team")):
            reply = by_parent.get((mention.extra["instance"], mention.extra.get("id")))
            if reply is not None:
                found.append(TeamReply(PLATFORM, mention.external_id, reply.author or "", reply.created_at or now,
                                       reply.url))
            elif str(mention.extra.get("id", "")).isdigit():
                rest.append(mention)
        never = datetime.min.replace(tzinfo=timezone.utc)
        due = sorted((m for m in rest if now - self._checked.get(m.external_id, never) >= self.platform.reply_recheck),
                     key=lambda m: self._checked.get(m.external_id, never))
        for mention in due[:self.platform.reply_checks_per_poll]:
            instance = mention.extra["instance"]
            if self.budgets.paused_until(instance, self.platform.reserve, now):
                continue
            try:
                context = self._get(instance, f"/api/v1/statuses/{mention.extra['id']}/context", {}, now)
            except SourceFailure as failure:
                if failure.kind is not FailureKind.GONE:
                    raise
                context = None  # deleted, or no longer visible: nothing to answer there
            self._checked[mention.external_id] = now
            replies, _ = self._posts(instance, [s for s in (context or {}).get("descendants") or []
                                                if isinstance(s, dict)], "context")
            answers = [p for p in replies if p.extra.get("by_team") and p.created_at
                       and (mention.created_at is None or p.created_at >= mention.created_at)]
            first = min(answers, key=lambda p: p.created_at, default=None)
            if first is not None:
                found.append(TeamReply(PLATFORM, mention.external_id, first.author or "", first.created_at, first.url))
        waiting = {m.external_id for m in rest}
        self._checked = {k: v for k, v in self._checked.items() if k in waiting}
        return found

    def _get(self, instance: str, path: str, params: dict, now: datetime) -> list | dict | None:
        what = f"Mastodon {instance}{path}"
        self.requests += 1
        token = self._token(instance)
        try:
            resp = http.get(self.session, instance + path, params=params,
                            headers={"User-Agent": self.platform.user_agent, "Accept": "application/json",
                                     **({"Authorization": f"Bearer {token}"} if token else {})},
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
        if not isinstance(data, (list, dict)):
            raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: response is neither a list nor an object")
        return data


def position(source: MastodonSource, cursor: dict) -> datetime | None:
    """A streaming source's newest status time; None for a source that only polls."""
    value = cursor.get("newest_at") if source.streaming else None
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


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
                  check=check_sources, warnings=config_warnings, order=65, position=position,
                  stop=mastodon_stream.close_all)
