"""Bluesky posts, read from Jetstream: one shared websocket per daemon, filtered on `app.bsky.feed.post`.

Jetstream carries every post on the network; nothing is searched upstream. One `Jetstream` hub per
URL (so per daemon) keeps a background reader thread that buffers events in time order; each
`type: bluesky` source's poll drains the events after its own cursor (Jetstream's `time_us`) and
hands them to the pipeline, whose matcher checks every brand's terms. The cursor goes into the
store in the same transaction as the mentions it covers, so a restart reconnects with the oldest
stored cursor and replays: nothing lost, and what is replayed is filtered by each cursor (nothing twice).

A source behind the buffer (a restart, a buffer trimmed while it was failing) makes the hub
reconnect from its cursor. Jetstream only keeps about 36 hours: what is older than that is searched
for with the AppView's `searchPosts` (connectors/bluesky_api.py) for every brand's terms, and the
window is recorded as a gap saying how complete that was. Jetstream events carry the author's DID
only: matched posts get their handle and follower count (reach) from `getProfiles`, team handles
are resolved to DIDs the same way, and team replies are seen in the stream or read with
`getPostThread` for the mentions still waiting.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import Field, field_validator
from websockets.exceptions import ConnectionClosedOK, WebSocketException
from websockets.sync.client import connect

from connectors.bluesky_api import (AppView, BlueskyApi, InThread, Team, appview, at_uri, external_id,
                                    search_terms, team_answer, view_event)
from connectors.registry import Platform
from connectors.team_replies import ReplyLog, SeenReply, answer_for
from monitor.configbase import ConfigProblem, Duration, Interval, Owned, SLUG, Strict
from monitor.core.clock import Clock, utcnow
from monitor.core.logs import get_logger
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.records import FetchResult, Gap, Post, TeamReply

PLATFORM = "bluesky"
COLLECTION = "app.bsky.feed.post"
READER_STALE = 600.0  # seconds without a drain after which a source no longer holds the buffer
REPLY_MEMORY = timedelta(days=7)  # team replies seen in the stream are kept this long for mentions to come
TEAM_RETRY = timedelta(minutes=5)  # team handles the AppView did not resolve are asked again after this
POST_URL = "https://bsky.app/profile/{}/post/{}"
log = get_logger(__name__)


# --- config ------------------------------------------------------------------------------------

class BlueskyPlatform(Strict):
    """The Jetstream endpoint and how the shared reader behaves."""

    jetstream_url: str = Field("wss://jetstream2.us-east.bsky.network/subscribe", description="Jetstream websocket URL")
    replay_window: Duration = Field(timedelta(hours=36), description="How far back Jetstream replays; an older "
                                    "cursor is recorded as a gap")
    buffer_events: int = Field(20_000, ge=100, description="Events held for sources still to drain them; when "
                               "full, the reader pauses and replays from where it stopped once they are drained")
    max_events_per_poll: int = Field(50_000, ge=1, description="Events a source takes from the reader per poll at most")
    stall_timeout: Duration = Field(timedelta(seconds=30), description="No message for this long: reconnect")
    connect_timeout: Duration = Field(timedelta(seconds=10), description="Longest wait for the websocket to open")
    reconnect_min: Duration = Field(timedelta(seconds=1),
                                    description="First wait before reconnecting; doubles per failure")
    reconnect_max: Duration = Field(timedelta(minutes=5), description="Longest wait between reconnects")
    max_bytes: int = Field(1_000_000, gt=0, description="A bigger websocket message closes the connection")
    api: BlueskyApi = Field(BlueskyApi(), description="The AppView: handles, reach, team replies, catch-up")

    @field_validator("jetstream_url")
    @classmethod
    def _ws_url(cls, url: str) -> str:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError("expected a ws:// or wss:// URL")
        return url


class BlueskySource(Owned):
    type: Literal["bluesky"]
    name: str = Field(pattern=SLUG, description="Unique within the brand; the source id is brand/name")
    interval: Interval = Field(timedelta(seconds=5), description="Time between polls of the shared reader's buffer "
                               "(no network call: a short interval keeps alerts close to group_wait)")
    require_match: Literal[True] = Field(True, description="The firehose is every post on Bluesky: only posts "
                                         "matching a brand are stored")


# --- events -> posts -----------------------------------------------------------------------------

def _links(record: dict) -> list[str]:
    """Link URIs of the record's facets and external/quote embeds: the text shows links shortened."""
    out = []
    for facet in record.get("facets") or []:
        for feature in (facet.get("features") or []) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and str(feature.get("$type", "")).endswith("#link"):
                if isinstance(feature.get("uri"), str):
                    out.append(feature["uri"])
    embed = record.get("embed")
    if isinstance(embed, dict):
        external = embed.get("external")
        if isinstance(external, dict) and isinstance(external.get("uri"), str):
            out.append(external["uri"])
    return list(dict.fromkeys(out))


def _tags(record: dict) -> list[str]:
    tags = [feature.get("tag") for facet in record.get("facets") or [] if isinstance(facet, dict)
            for feature in facet.get("features") or [] if isinstance(feature, dict)
            and str(feature.get("$type", "")).endswith("#tag")]
    return [t for t in tags if isinstance(t, str)]


def _created(record: dict, time_us: int) -> datetime:
    value = record.get("createdAt")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed.astimezone(timezone.utc)
        except ValueError:
            pass
    return datetime.fromtimestamp(time_us / 1e6, tz=timezone.utc)


def event_to_post(event: dict, team: frozenset[str] = frozenset()) -> Post:
    """A Jetstream `create` commit of a post as a Post; ValueError/KeyError/TypeError when it is not one."""
    did, commit, time_us = event["did"], event["commit"], event["time_us"]
    record, rkey = commit["record"], commit["rkey"]
    if not isinstance(did, str) or not isinstance(rkey, str) or not isinstance(record, dict):
        raise TypeError("did, rkey or record of the wrong type")
    text = record["text"]
    if not isinstance(text, str):
        raise TypeError("text is not a string")
    links, tags = _links(record), _tags(record)
    searchable = "\n".join([text, *(f"#{t}" for t in tags if f"#{t}".casefold() not in text.casefold()),
                            *(u for u in links if u not in text)])
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    root, parent = reply.get("root"), reply.get("parent")
    extra: dict[str, Any] = {"did": did, "time_us": time_us, "links": links, "tags": tags,
                             "langs": record.get("langs") if isinstance(record.get("langs"), list) else None}
    if did in team:
        extra["by_team"] = True
    return Post(source=PLATFORM, external_id=f"{did}/{rkey}", text=searchable, url=POST_URL.format(did, rkey),
                author=did, created_at=_created(record, time_us),
                thread_id=root.get("uri") if isinstance(root, dict) else None,
                parent_id=parent.get("uri") if isinstance(parent, dict) else None, reach=None, extra=extra)


def _time_us(event: Any) -> int | None:
    value = event.get("time_us") if isinstance(event, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --- the shared reader -----------------------------------------------------------------------------

class Jetstream:
    """One websocket to Jetstream and the events it buffered, shared by every Bluesky source.

    The buffer holds every event after `self._from` up to `self._high` (both `time_us`), complete: a
    dropped or stalled socket reconnects with `cursor=_high` and skips what it already has. A source
    whose cursor is older than `_from` makes the reader start over from that cursor. A full buffer
    (sources slower than the stream) closes the socket until the polls drain it, then reconnects
    from `_high`: backpressure through replay, never a dropped event."""

    def __init__(self, platform: BlueskyPlatform):
        self.platform = platform
        self._cond = threading.Condition()
        self._events: deque[tuple[int, dict | None]] = deque()   # (time_us, event or None when malformed)
        self._from: int | None = None      # buffer complete after this time_us
        self._high: int | None = None      # newest time_us received
        self._generation = 0               # bumped on a rewind: messages of an older connection are discarded
        self._readers: dict[str, tuple[int, float]] = {}  # source id -> (its cursor, when it drained)
        self._full = False
        self._malformed_untimed = 0
        self._state: str | None = None
        self._down_since: float | None = None  # monotonic time the socket was lost (None while connected)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ws = None
        self._thread: threading.Thread | None = None

    # --- the polls' side ---

    def down_for(self) -> float:
        """Seconds since the stream was lost (0 while connected or not yet tried)."""
        since = self._down_since
        return 0.0 if since is None else time.monotonic() - since

    def drain(self, source_id: str, cursor: int) -> tuple[list[tuple[int, dict | None]], int, bool, int]:
        """Events after `cursor` (at most max_events_per_poll), the cursor that covers them, whether the
        buffer covers `cursor` at all (False: a replay from it was asked for), and malformed messages
        without a time."""
        with self._cond:
            self._readers[source_id] = (cursor, time.monotonic())
            if self._from is None or cursor < self._from:
                self._rewind(cursor)
                return [], cursor, False, 0
            limit = self.platform.max_events_per_poll
            out = [item for item in self._events if item[0] > cursor]
            if len(out) > limit:
                out = out[:limit]
                covered = out[-1][0]
            else:
                covered = max(cursor, self._high or cursor)
            self._readers[source_id] = (covered, time.monotonic())
            self._trim()
            if self._full and len(self._events) < self.platform.buffer_events:
                self._full = False
                self._wake.set()
            untimed, self._malformed_untimed = self._malformed_untimed, 0
            return out, covered, True, untimed

    def _rewind(self, cursor: int) -> None:
        self._generation += 1
        self._events.clear()
        self._from = self._high = cursor
        self._full = False
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="jetstream", daemon=True)
            self._thread.start()
        else:
            self._close_socket()
        self._wake.set()

    def _trim(self) -> None:
        """Drop what every source has drained. A source silent for READER_STALE (removed by a reload,
        or failing) no longer holds the buffer: it replays from its cursor when it comes back."""
        recent = time.monotonic() - READER_STALE
        cursors = [c for c, at in self._readers.values() if at >= recent]
        done = min(cursors) if cursors else None
        while self._events and done is not None and self._events[0][0] <= done:
            self._from = self._events.popleft()[0]

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._close_socket()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _close_socket(self) -> None:
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - closing a socket that is already gone
                pass

    # --- the reader thread ---

    def _set_state(self, state: str, detail: str = "") -> None:
        """Logged once per change: a flapping stream's repeated failures of one kind are one line. A normal
        close (the server restarting or shutting down, our own shutdown) is news, not a warning."""
        if state in ("connected", "paused"):
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.monotonic()
        if state == self._state:
            return
        self._state = state
        (log.info if state in ("connected", "closed") else log.warning)("Jetstream %s%s", state,
                                                                        f": {detail}" if detail else "")

    def _url(self, cursor: int | None) -> str:
        params = [("wantedCollections", COLLECTION)] + ([("cursor", str(cursor))] if cursor is not None else [])
        return f"{self.platform.jetstream_url}?{urlencode(params)}"

    def _run(self) -> None:
        delay = self.platform.reconnect_min.total_seconds()
        while not self._stop.is_set():
            self._wake.clear()  # a rewind or stop from here on cuts the wait below short
            with self._cond:
                generation, cursor = self._generation, self._high
            received = False
            try:
                with connect(self._url(cursor), open_timeout=self.platform.connect_timeout.total_seconds(),
                             close_timeout=1, max_size=self.platform.max_bytes, proxy=None,
                             compression=None) as ws:
                    self._ws = ws
                    self._set_state("connected")
                    while not self._stop.is_set() and generation == self._generation:
                        message = ws.recv(timeout=self.platform.stall_timeout.total_seconds())
                        received = True
                        if not self._accept(message, generation):
                            break  # buffer full: close, and come back from _high once it is drained
            except TimeoutError:
                self._set_state("stalled", f"no event for {self.platform.stall_timeout}; reconnecting")
            except ConnectionClosedOK:
                if generation == self._generation and not self._stop.is_set():
                    self._set_state("closed", "by the server; reconnecting")
            except (OSError, WebSocketException) as exc:
                if generation == self._generation and not self._stop.is_set():
                    self._set_state("disconnected", type(exc).__name__)
            finally:
                self._ws = None
            if generation != self._generation:
                delay = self.platform.reconnect_min.total_seconds()
                continue
            if received:
                delay = self.platform.reconnect_min.total_seconds()
            if self._full:
                self._set_state("paused", "buffer full until the sources drain it")
                while self._full and not self._stop.is_set() and generation == self._generation:
                    self._wake.wait(1.0)
                    self._wake.clear()
                continue
            if self._stop.is_set():
                break
            self._wake.wait(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, self.platform.reconnect_max.total_seconds())

    def _accept(self, message: str | bytes, generation: int) -> bool:
        """Buffer one message; False when the buffer is full (the message is left for the replay)."""
        try:
            event = json.loads(message)
        except (ValueError, UnicodeDecodeError, RecursionError):
            event = None
        time_us = _time_us(event)
        with self._cond:
            if generation != self._generation:
                return True
            if time_us is None:
                self._malformed_untimed += 1
                return True
            if self._high is not None and time_us <= self._high:
                return True  # replayed after a reconnect: already buffered
            if len(self._events) >= self.platform.buffer_events:
                self._full = True
                return False
            self._high = time_us
            if not isinstance(event, dict) or event.get("kind") != "commit":
                return True  # identity and account events: nothing to read
            commit = event.get("commit")
            if not isinstance(commit, dict):
                self._events.append((time_us, None))  # counted as malformed by the poll that drains it
            elif commit.get("collection") == COLLECTION:  # another collection: a server ignoring the filter
                self._events.append((time_us, event))
            return True


_HUBS: dict[str, Jetstream] = {}
_HUBS_LOCK = threading.Lock()


def hub(platform: BlueskyPlatform) -> Jetstream:
    """The process's one reader of `platform.jetstream_url`."""
    with _HUBS_LOCK:
        found = _HUBS.get(platform.jetstream_url)
        if found is None:
            found = _HUBS[platform.jetstream_url] = Jetstream(platform)
        return found


def close_all() -> None:
    """Stop every reader (tests, shutdown)."""
    with _HUBS_LOCK:
        hubs = list(_HUBS.values())
        _HUBS.clear()
    for each in hubs:
        each.stop()


# --- the connector ----------------------------------------------------------------------------------

class BlueskyConnector:
    PLATFORM = PLATFORM

    def __init__(self, source: BlueskySource, settings: Any, store=None, clock: Clock = utcnow):
        self.source = source
        self.settings = settings
        self.platform: BlueskyPlatform = settings.bluesky
        self.clock = clock
        brand_id, brand = settings.brand_of(source)
        self.source_id = f"{brand_id}/{source.name}"
        entries = [a.lstrip("@") for a in brand.team.bluesky]
        self.team = Team(frozenset(a for a in entries if a.startswith("did:")),
                         frozenset(a.casefold() for a in entries if not a.startswith("did:")))
        self._unresolved = set(self.team.handles)
        self._resolve_after: datetime | None = None
        self._replies = ReplyLog()        # team replies seen in the stream
        self._checked: dict[str, datetime] = {}  # mention -> when its thread was last read
        self.hub = hub(self.platform)
        self.api: AppView = appview(self.platform.api)

    def fetch(self, cursor: dict | None) -> FetchResult:
        now = self.clock()
        now_us = int(now.timestamp() * 1_000_000)
        self._resolve_team(now)
        gaps: list[Gap] = []
        caught: list[Post] = []
        start = (cursor or {}).get("time_us")
        if not isinstance(start, int):
            start = now_us  # a first poll starts live: the firehose's history is not backfilled
        oldest = int((now - self.platform.replay_window).timestamp() * 1_000_000)
        if start < oldest:
            since, until = (datetime.fromtimestamp(t / 1e6, tz=timezone.utc) for t in (start, oldest))
            caught, gap = self._catch_up(since, until, now)
            gaps.append(gap)
            start = oldest
        events, covered, ready, untimed = self.hub.drain(self.source_id, start)
        down = self.hub.down_for()
        if not events and not caught and down > self.platform.stall_timeout.total_seconds():
            # health shows it (failing, one Slack message); the cursor stays where it was
            raise SourceFailure(FailureKind.UNAVAILABLE, f"Jetstream unreachable for {down:.0f} s")
        posts, skipped, deleted = list(caught), [f"message without time_us #{i + 1}" for i in range(untimed)], []
        for time_us, event in events:
            if event is None:
                skipped.append(f"event {time_us}: commit is not an object")
                continue
            commit = event["commit"]
            if commit.get("operation") == "delete" and isinstance(commit.get("rkey"), str):
                deleted.append(f"{event.get('did')}/{commit['rkey']}")
                continue
            if commit.get("operation") != "create":
                continue  # an edit: the post was judged in its first version
            try:
                post = event_to_post(event, self.team.dids)
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                skipped.append(f"event {time_us}: {type(exc).__name__}")
                continue
            posts.append(post)
            if post.extra.get("by_team") and (post.parent_id or post.thread_id):
                self._replies.add([SeenReply(post.external_id, external_id(post.thread_id),
                                             external_id(post.parent_id), post.author or "", post.created_at or now,
                                             post.url)])
        if not ready:
            log.debug("source %s: Jetstream is replaying from its cursor %d", self.source_id, start)
        return FetchResult(posts, {"time_us": covered}, gaps=gaps, skipped=skipped, deleted=deleted)

    def _catch_up(self, since: datetime, until: datetime, now: datetime) -> tuple[list[Post], Gap]:
        """Posts of the brands published while the stream could not be replayed, from searchPosts."""
        found: dict[str, Post] = {}
        complete, problem, first = True, "", self.api.requests
        for term in search_terms(self.settings.brands):
            if self.api.requests - first >= self.platform.api.catchup_requests:
                complete, problem = False, f": {self.platform.api.catchup_requests} requests made"
                break
            try:
                views, whole = self.api.search(term, since, until, now)
            except SourceFailure as failure:
                complete, problem = False, f": {failure.message}"
                break
            complete = complete and whole
            for view in views:
                try:
                    post = event_to_post(view_event(view), self.team.dids)
                except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                    continue
                found.setdefault(post.external_id, post)
        how = ("caught up with searchPosts for the brands' names, hashtags, domains and handles (a post "
               "matching only otherwise may be missing)" if complete else
               f"searchPosts read only part of it (page or rate limit{problem})")
        log.info("source %s: %d post(s) from searchPosts for %s .. %s", self.source_id, len(found),
                 f"{since:%Y-%m-%d %H:%M}", f"{until:%Y-%m-%d %H:%M} UTC")
        return list(found.values()), Gap(since, until, None, f"Bluesky: older than Jetstream's replay window; {how}")

    def _resolve_team(self, now: datetime) -> None:
        """Team handles become DIDs (Jetstream names authors by DID); asked again later when not known."""
        if not self._unresolved or (self._resolve_after is not None and now < self._resolve_after):
            return
        self._resolve_after = now + TEAM_RETRY
        try:
            profiles = self.api.profiles(sorted(self._unresolved), now)
        except SourceFailure as failure:
            log.debug("source %s: team handles not resolved yet (%s)", self.source_id, failure.message)
            return
        dids = {profile.did for profile in profiles.values()}
        self._unresolved -= set(profiles)
        self.team = Team(self.team.dids | dids, self.team.handles)

    def enrich(self, posts: list[Post]) -> list[Post]:
        """Matched posts with their author's handle and followers (reach), read in batches and cached;
        posts whose profile is not readable now keep the DID and no reach."""
        try:
            profiles = self.api.profiles([p.author for p in posts if p.author], self.clock())
        except SourceFailure as failure:
            log.debug("source %s: profiles not read (%s); reach left empty", self.source_id, failure.message)
            return posts
        out = []
        for post in posts:
            profile = profiles.get(post.author or "")
            if profile is None:
                out.append(post)
                continue
            extra = {**post.extra, "handle": profile.handle}
            if profile.handle and profile.handle.casefold() in self.team.handles:
                extra["by_team"] = True
            out.append(replace(post, author=f"@{profile.handle}" if profile.handle else post.author,
                               reach=profile.followers, extra=extra))
        return out

    def find_team_replies(self, awaiting: list) -> list[TeamReply]:
        """Which waiting mentions a team account answered: a team reply seen in the stream (to the mention
        or later in its thread), else the mention's thread read with getPostThread, a few per poll."""
        if not (self.team.dids or self.team.handles):
            return []
        now = self.clock()
        self._replies.forget_before(now - REPLY_MEMORY)
        replies = list(self._replies.replies.values())
        found, rest = [], []
        for mention in awaiting:
            if mention.source != PLATFORM or (mention.extra or {}).get("by_team"):
                continue
            seen = answer_for(InThread.of(mention), replies, True)
            if seen is not None:
                found.append(TeamReply(PLATFORM, mention.external_id, seen.responder, seen.responded_at, seen.url))
            else:
                rest.append(mention)
        due = [m for m in rest if now - self._checked.get(m.external_id, datetime.min.replace(tzinfo=timezone.utc))
               >= self.platform.api.reply_recheck]
        due.sort(key=lambda m: self._checked.get(m.external_id, datetime.min.replace(tzinfo=timezone.utc)))
        for mention in due[:self.platform.api.reply_checks_per_poll]:
            try:
                thread = self.api.thread(at_uri(mention.external_id), now)
            except SourceFailure as failure:
                log.debug("source %s: getPostThread not read (%s)", self.source_id, failure.message)
                break
            self._checked[mention.external_id] = now
            answer = team_answer(thread, self.team, mention.created_at) if thread else None
            if answer is not None:
                found.append(TeamReply(PLATFORM, mention.external_id, *answer))
        waiting = {m.external_id for m in rest}
        self._checked = {k: v for k, v in self._checked.items() if k in waiting}
        return found


_HANDLE = re.compile(r"^@?[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)+$", re.I)
_DID = re.compile(r"^did:(plc|web):[a-zA-Z0-9._:%-]{1,2048}$")


def config_warnings(settings: Any, loaded: Any, file: str) -> list[ConfigProblem]:
    """`validate`: team entries that are neither a DID nor a handle, handles that are not domain names,
    and more than one Bluesky source (each drains the whole network; one finds every brand)."""
    out = []
    sources = []
    for brand_id, brand in settings.brands.items():
        line = loaded.lines.get(("brands", brand_id), 1)
        sources += [f"{brand_id}/{s.name}" for s in brand.sources if s.type == PLATFORM]
        for entry in brand.team.bluesky:
            if _DID.match(entry) or _HANDLE.match(entry):
                continue
            out.append(ConfigProblem(file, line, f"brands.{brand_id}.team.bluesky", repr(entry),
                                     "a handle (acme.bsky.social) or DID (did:plc:…) of the team's Bluesky account",
                                     warning=True))
        for handle in brand.handles:
            if "." in handle.lstrip("@") and not _HANDLE.match(handle):
                out.append(ConfigProblem(file, line, f"brands.{brand_id}.handles", repr(handle),
                                         "a Bluesky handle is a domain name (@acme.bsky.social, @acme.com)",
                                         warning=True))
    if len(sources) > 1:
        out.append(ConfigProblem(file, 1, "brands.*.sources", ", ".join(sources),
                                 "one `type: bluesky` source: each reads the whole network and matches every "
                                 "brand, so more only repeat the work", warning=True))
    return out


def position(source: BlueskySource, cursor: dict) -> datetime | None:
    """The stream time (`time_us`) the source's cursor covers."""
    value = cursor.get("time_us")
    return datetime.fromtimestamp(value / 1e6, tz=timezone.utc) if isinstance(value, int) else None


def account(name: str) -> str:
    """A handle as Bluesky writes it (`@acme.bsky.social`), or a DID as it is."""
    return name if name.startswith(("@", "did:")) else "@" + name


PLUGIN = Platform(type=PLATFORM, display="Bluesky", source=BlueskySource, connector=BlueskyConnector,
                  settings_key="bluesky", settings_model=BlueskyPlatform,
                  team="Bluesky handles (acme.bsky.social) or DIDs (did:plc:…) of the team's accounts",
                  account=account, warnings=config_warnings, order=60, position=position,
                  stop=close_all)
