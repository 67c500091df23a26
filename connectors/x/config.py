"""X's config: one app's bearer token and monthly read cap (`x:`), and the source blocks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Mapping

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.configbase import FIRST_POLL_LOOKBACK, SLUG, Duration, Interval, Owned, Strict, http_base_url


class XPlatform(Strict):
    """One X app (a Project's app-only bearer token): X bills every post read and caps reads per
    month by plan, so every X source spends from this app's monthly read cap."""

    bearer_token: SecretStr = Field(description="The app's bearer token, from ${X_BEARER_TOKEN}")
    app: str = Field("default", pattern=SLUG, description="Name the reads are counted under in the store")
    monthly_read_cap: int = Field(10_000, ge=0, description="Post reads per month your plan allows; the X "
                                  "sources pause when the next page could exceed it and resume on the 1st")
    base_url: str = Field("https://api.twitter.com", description="X API base URL")
    connect_timeout: Duration = Field(timedelta(seconds=3.05), description="Longest wait for a connection")
    read_timeout: Duration = Field(timedelta(seconds=20), description="Longest wait for the next bytes of an answer")
    max_bytes: int = Field(5_000_000, gt=0, description="A bigger answer is refused (gzip bombs too)")
    max_results: int = Field(100, ge=10, le=100, description="Posts per page (X allows 10 to 100)")
    max_pages: int = Field(5, ge=1, le=50, description="Pages per query per poll; the rest waits for the next poll")
    initial_pages: int = Field(1, ge=1, le=50, description="Pages read on a query's first poll (older posts of "
                               "the 7-day window are recorded as a gap, not read)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return http_base_url(url)


class XSource(Owned):
    """X recent search (the last 7 days) and the mentions timelines of the brand's own handles."""

    type: Literal["x"]
    name: str = Field(pattern=SLUG, description="Unique within the brand; the source id is brand/name")
    search: bool = Field(True, description="Run a recent search with `query`")
    query: str | None = Field(None, min_length=1, max_length=1024, description="Verbatim X search syntax; default: "
                              "the brand's names, aliases, handles, hashtags and domains, without retweets")
    mentions: bool = Field(True, description="Read the mentions timeline of each of the brand's handles")
    expected_posts_per_day: int = Field(50, ge=0, description="Posts per day you expect per query or timeline: "
                                        "`validate` estimates the monthly reads from it")
    interval: Interval = Field(timedelta(minutes=5), description="Time between polls")
    require_match: bool = Field(False, description="False: X already selected these posts (exclusions still apply)")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll (of a new source, or a new "
                                          "install) stores items published this long ago at most, as backfill")


    @model_validator(mode="after")
    def _something_to_read(self) -> "XSource":
        if not (self.search or self.mentions):
            raise ValueError("search and mentions are both off: this source would read nothing")
        if self.query is not None and not self.search:
            raise ValueError("query is only used with search: true")
        return self


def check_sources(brands: Mapping[str, Any], sections: Mapping[str, Any]) -> None:
    """An X source needs something to read and the app's bearer token (an invalid `x:` is reported on its own)."""
    idle = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources
            if s.type == "x" and not s.search and not b.handles]
    if idle:
        raise ValueError(f"X source {', '.join(idle)} has search: false and its brand has no handles whose "
                         "mentions to read: turn search on or add handles")
    if "x" in sections and sections["x"] is None:
        needy = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources if s.type == "x"]
        if needy:
            raise ValueError(f"X source {', '.join(needy)} needs a top-level `x:` section with "
                             "bearer_token (from ${X_BEARER_TOKEN})")


def reads_per_month(settings: Any) -> int:
    """What `validate` expects the X sources to read: each query and mentions timeline, 30 days."""
    total = 0
    for brand in settings.brands.values():
        for src in brand.sources:
            if src.type == "x":
                streams = int(src.search) + (len(brand.handles) if src.mentions else 0)
                total += streams * src.expected_posts_per_day * 30
    return total
