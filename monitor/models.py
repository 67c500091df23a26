"""Records that travel between the stages of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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

    @property
    def searchable(self) -> str:
        """What the matcher reads: title, body and link together."""
        return "\n".join(part for part in (self.title, self.text, self.url) if part)


@dataclass(frozen=True)
class Match:
    """Which brands a post is about, and by which terms."""

    brands: dict[str, list[str]]

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


def within_lookback(posts: list[Post], since: datetime, what: str) -> tuple[list[Post], Gap | None]:
    """A first poll keeps what was published since `since` (or carries no date); what it leaves out is
    recorded as a gap, so `status` says how much history was not stored."""
    kept = [p for p in posts if p.created_at is None or p.created_at >= since]
    older = [p.created_at for p in posts if p.created_at is not None and p.created_at < since]
    if not older:
        return kept, None
    return kept, Gap(min(older), since, len(older), f"{what}: {len(older)} item(s) older than its "
                                                    "first_poll_lookback were not stored")
