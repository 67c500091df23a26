"""Records that travel between the stages of the pipeline, and the rows the store hands out and takes in."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.core.labels import Labels


# What a store cannot hold: NUL (PostgreSQL text) and lone surrogates (not encodable as UTF-8, which a
# JSON `"\ud800"` escape produces). Replaced where text enters, so one poisoned item cannot wedge a poll.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INT64 = 2 ** 63 - 1


def clean_text(text: str) -> str:
    """`text` with the code points no store accepts replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def clean(value: Any) -> Any:
    """A JSON-like value made storable: text cleaned (keys too), non-finite floats and integers
    beyond 64 bits (PostgreSQL `jsonb` and SQLite reject them) replaced by None."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value <= _INT64 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return clean_text(str(value))


def _optional_text(value: Any) -> str | None:
    return None if value is None else clean_text(value if isinstance(value, str) else str(value))


class MalformedItem(ValueError):
    """A platform item a connector cannot turn into a post; the message says why, never quoting it."""


@dataclass(frozen=True)
class Post:
    """One item as a connector found it, before anyone decided it is about a brand.

    `source` is the platform (`feed`, `reddit`, …) and `external_id` its id there: together they
    are the identity of a mention, so the same item found twice is stored once.
    """

    source: str
    external_id: str
    text: str
    url: str | None = None
    author: str | None = None
    title: str | None = None
    created_at: datetime | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    reach: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Sanitised where it enters: every store accepts what any connector hands over."""
        set_ = object.__setattr__
        set_(self, "external_id", clean_text(str(self.external_id)))
        for name in ("text", "url", "author", "title", "thread_id", "parent_id"):
            set_(self, name, _optional_text(getattr(self, name)))
        if not isinstance(self.created_at, datetime):
            set_(self, "created_at", None)
        reach = self.reach
        if not isinstance(reach, int) or isinstance(reach, bool) or not -_INT64 <= reach <= _INT64:
            set_(self, "reach", None)
        set_(self, "extra", clean(self.extra) if isinstance(self.extra, dict) else {})

    @property
    def searchable(self) -> str:
        """What the matcher reads: title, body and link together."""
        return "\n".join(part for part in (self.title, self.text, self.url) if part)


@dataclass(frozen=True)
class Match:
    """Which brands a post is about, and by which terms; `after_labels`: per brand, the part of its
    query still to decide once the post is labelled (monitor/query/evaluate.py)."""

    brands: dict[str, list[str]]
    after_labels: dict[str, str] = field(default_factory=dict)

    @property
    def brand(self) -> str:
        return next(iter(self.brands))


@dataclass(frozen=True)
class Gap:
    """Items that existed but could not be fetched (a listing's depth, a search window)."""

    window_start: datetime | None
    window_end: datetime | None
    estimated_count: int | None
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", clean_text(str(self.reason)))


@dataclass(frozen=True)
class TeamReply:
    """A brand account answered a stored mention (identified by platform and external id)."""

    source: str
    external_id: str
    responder: str
    responded_at: datetime
    url: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """What one poll of one source returned: the posts and the cursor that covers them."""

    posts: list[Post]
    cursor: dict
    not_modified: bool = False
    warnings: list[str] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "id: why" of each malformed item left out
    deleted: list[str] = field(default_factory=list)  # external ids the platform says were deleted

    def __post_init__(self) -> None:
        object.__setattr__(self, "cursor", clean(self.cursor) if self.cursor is not None else None)
        object.__setattr__(self, "warnings", [clean_text(str(w)) for w in self.warnings])
        object.__setattr__(self, "skipped", [clean_text(str(s)) for s in self.skipped])
        object.__setattr__(self, "deleted", [clean_text(str(d)) for d in self.deleted])


def within_lookback(posts: list[Post], since: datetime, what: str) -> tuple[list[Post], Gap | None]:
    """A first poll keeps what was published since `since` (or carries no date); what it leaves out is
    recorded as a gap, so `status` says how much history was not stored."""
    kept = [p for p in posts if p.created_at is None or p.created_at >= since]
    older = [p.created_at for p in posts if p.created_at is not None and p.created_at < since]
    if not older:
        return kept, None
    return kept, Gap(min(older), since, len(older), f"{what}: {len(older)} item(s) older than its "
                                                    "first_poll_lookback were not stored")


KUDOS_ROUTE = "kudos"  # the notifications of praise for a kudos channel: never an alert
BACKFILL_ROUTE = "backfill"  # mentions listed in a brand's backlog summary (first run, long outage)


@dataclass(frozen=True)
class StoredMention:
    id: int
    source: str
    external_id: str
    source_id: str
    brand: str
    matched: dict
    url: str | None
    author: str | None
    title: str | None
    text: str
    created_at: datetime | None
    fetched_at: datetime
    reach: int | None
    extra: dict
    thread_id: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True)
class AlertRow:
    id: int
    dedupe_key: str
    kind: str
    mention_id: int | None
    channel: str
    payload: dict
    state: str
    attempts: int
    created_at: datetime
    sending_at: datetime | None
    op: str = "post"
    thread_of: int | None = None
    updates: int | None = None
    receiver: str = "slack"
    format: str = "slack"  # slack: a rendered Block Kit payload; neutral: a Message for the receiver to render
    folded: int | None = None  # the channel budget that put this post into a thread (its note is rendered)


@dataclass(frozen=True)
class NewAlert:
    """An outbox row: `post` a message (into the thread of alert `thread_of` when set), `update` the
    message that alert `updates` posted, or `upload` a file (payload carries it)."""

    dedupe_key: str
    kind: str
    mention_id: int | None
    brand: str | None
    channel: str
    payload: dict
    op: str = "post"
    thread_of: int | None = None
    updates: int | None = None
    receiver: str = "slack"  # who sends it: a configured receiver's name (`slack`, the default)
    format: str = "slack"  # slack: Block Kit, built when queued; neutral: a Message (or, for an update, a
    # {"change": Change}), rendered by the receiver at send time


@dataclass(frozen=True)
class StatusUpdate:
    """An update of the message `message_id` posted: `change` (monitor.core.messages) is what happened."""

    message_id: int
    mention_id: int
    dedupe_key: str
    change: dict


@dataclass(frozen=True)
class NewNotification:
    """A mention routed to one route: `waiting` for its group's message, `silenced`, or carried at once
    by `alert` (a thread reply to an earlier message, or folded into a spike's thread)."""

    mention_id: int
    brand: str
    route: str
    channel: str
    group_key: str
    urgent: bool
    state: str
    silence_id: int | None = None
    alert: NewAlert | None = None
    carried_by: int | None = None  # an `attached` cross-post: the message already carrying its earlier twin


@dataclass(frozen=True)
class Crosspost:
    """A routed mention a later one joins: it, the notifications of its alert routes, its platform and time."""

    mention_id: int
    notifications: list[NewNotification]
    source: str
    at: datetime


@dataclass(frozen=True)
class WaitingItem:
    notification_id: int
    brand: str
    mention: StoredMention
    labels: Labels
    deadline: datetime | None
    silence_id: int | None
    silence_reason: str | None
    closed: bool = False  # its reply clock was closed (answered, handled, not relevant) while it waited
    also: tuple[tuple[str, str | None], ...] = ()  # its cross-posts (source id, url)
