"""A brand: its terms, its channels, its promise, its team accounts and its sources (one block per
platform, each platform's model from its connector's registry entry)."""

from __future__ import annotations

import re
import string
from datetime import time, timedelta
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, create_model, field_validator, model_validator

from connectors.registry import platforms
from monitor.configbase import Channel, Duration, Strict, parse_duration, prefixed
from monitor.query import valid_query

# Each platform's source model, picked by the `type` key.
Source = Annotated[Union[tuple(p.source for p in platforms())], Field(discriminator="type")]

TeamAccounts = create_model(
    "TeamAccounts", __base__=Strict, __module__=__name__,
    __doc__="The brand's own accounts: their replies answer a mention, their posts are never alerted on.",
    **{p.type: (list[str], Field([], description=p.team)) for p in platforms() if p.team})


THANK_YOU_FIELDS = ("author", "platform")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Sentiment = Literal["negative", "neutral", "positive"]
Intent = Literal["complaint", "question", "praise", "suggestion", "other"]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as Europe/Berlin or America/New_York") from None
    return name


TimeZone = Annotated[str, AfterValidator(_zone)]


def _clock_time(value: Any) -> Any:
    """YAML 1.1 reads an unquoted 17:00 as the base-60 integer 1020: turn it back into 17:00."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 24 * 60:
            raise ValueError("expected a time of day such as '09:00' or '17:30'")
        return time(value // 60, value % 60)
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class WeeklyHours(Strict):
    """Hours of some weekdays in one time zone; `end` before `start` runs past midnight."""

    timezone: TimeZone = Field("UTC", description="IANA time zone the hours are in, e.g. Europe/Berlin")
    days: list[Weekday] = Field(list(WEEKDAYS), description="Weekdays the hours apply to")
    start: ClockTime = Field(description="Start time, HH:MM")
    end: ClockTime = Field(description="End time, HH:MM (before start: runs past midnight)")


class DigestConfig(Strict):
    """The weekly digest: sent at `day` `at` in `timezone` about the ISO week that just finished."""

    enabled: bool = Field(True, description="false: no weekly digest for this brand")
    day: Weekday = Field("mon", description="Weekday the digest is sent")
    at: time = Field(time(9, 0), description="Time of day the digest is sent, HH:MM")
    timezone: TimeZone = Field("UTC", description="IANA time zone of `day` and `at`")
    channel: Channel | None = Field(None, description="Default: the brand's slack_channel")
    chart_weeks: int = Field(8, ge=2, le=52, description="Weeks of history the digest's chart shows")


class SpikeConfig(Strict):
    """A spike: the last hour far above the same hour of the week in the baseline (median and MAD)."""

    enabled: bool = Field(True, description="false: no spike alerts for this brand")
    fold_negatives: bool = Field(True, description="While a spike lasts, its brand's negative mentions go into "
                                                    "the spike's thread instead of one message each")
    baseline: Duration = Field(timedelta(days=14), description="History the usual hourly level is taken from")
    min_mentions: int = Field(10, ge=1, description="Fewer mentions (or negative mentions) in the hour are never a spike")
    z_threshold: float = Field(4.0, gt=0, description="Robust z-score (MAD-scaled) above which the hour is a spike")
    min_ratio: float = Field(3.0, ge=1, description="The hour must also be this many times the usual level")
    negative_share_rise: float = Field(0.3, gt=0, le=1, description="Negative share above the usual share that, "
                                       "with enough negative mentions, makes a negative spike")
    calm_for: Duration = Field(timedelta(hours=1), description="Below the thresholds this long ends the spike")
    min_history: Duration = Field(timedelta(days=1), description="No spikes until the brand has mentions this old")


def _at_least_a_minute(value: timedelta) -> timedelta:
    if value < timedelta(minutes=1):
        raise ValueError("expected at least 1m, such as 30m, 4h or 1d")
    return value


Promise = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_at_least_a_minute)]


class Brand(Strict):
    names: list[str] = Field(min_length=1, description="Names and product names, matched as whole words")
    aliases: list[str] = Field([], description="Other names matched like `names` (shorter, riskier ones)")
    handles: list[str] = Field([], description="The brand's accounts (@acme), matched as mentions")
    hashtags: list[str] = Field([], description="Hashtags (#acme) that make a post a mention")
    domains: list[str] = Field([],
                               description="Domains (acme.io, also the defanged acme[.]io) that make a post a mention")
    exclude: list[str] = Field([], description="Phrases that make a match not about this brand")
    query: str | None = Field(None, description="A query (see the README's Queries) that replaces the names, "
                              "aliases, handles, hashtags and domains in deciding what is a mention")
    fold_accents: bool = Field(True, description="Acmé, Äcme and Acme are the same name (false: accents count)")
    slack_channel: Channel = Field(description="Channel the brand's alerts go to unless a route says otherwise")
    reply_within: Promise = Field(timedelta(hours=4), description="The reply time the team promises")
    reply_within_by_intent: dict[Intent, Promise] = Field({}, description="Per-intent promise, e.g. question: 1h")
    business_hours: WeeklyHours | None = Field(None, description="Only these hours count towards the promise, "
                                               "e.g. {timezone: Europe/Berlin, days: [mon, …, fri], start: '09:00', "
                                               "end: '17:00'}")
    remind_at: float = Field(0.75, gt=0, lt=1, description="Share of the promise after which a reminder goes out")
    kudos_channel: Channel | None = Field(None, description="Where praise goes, with a suggested thank-you")
    thank_you: str = Field("Thank you so much, {author}! We're glad you like it. 💙",
                           description="Suggested reply to praise; {author} and {platform} are filled in")
    digest: DigestConfig = DigestConfig()
    spikes: SpikeConfig = SpikeConfig()
    team: TeamAccounts = TeamAccounts()
    sources: list[Source] = Field([],
                                  description="Where this brand's mentions are read; each block's `type` picks the platform")

    @field_validator("business_hours")
    @classmethod
    def _business_hours(cls, hours: WeeklyHours | None) -> WeeklyHours | None:
        """The reply clock only counts time inside these windows: they must exist."""
        if hours is not None and not hours.days:
            raise ValueError("expected at least one day in business_hours.days")
        if hours is not None and hours.start == hours.end:
            raise ValueError("business_hours start and end are equal: leave business_hours out to count every hour")
        return hours

    @field_validator("query")
    @classmethod
    def _query(cls, text: str | None) -> str | None:
        return valid_query(text)

    @field_validator("handles")
    @classmethod
    def _handles(cls, values: list[str]) -> list[str]:
        return prefixed("@", values)

    @field_validator("thank_you")
    @classmethod
    def _thank_you_placeholders(cls, template: str) -> str:
        """Only {author} and {platform} are filled in: anything else would fail on the first praise."""
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError:
            raise ValueError("unbalanced { or }: expected {author} and {platform} as placeholders "
                             "(write {{ and }} for literal braces)") from None
        unknown = sorted({"{" + f + "}" for f in fields} - {"{" + f + "}" for f in THANK_YOU_FIELDS})
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}: expected only {{author}} and "
                             "{platform} (write {{ and }} for literal braces)")
        return template

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, values: list[str]) -> list[str]:
        return prefixed("#", values)

    @field_validator("names", "aliases", "exclude")
    @classmethod
    def _not_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("expected non-empty phrases")
        return values

    @field_validator("domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            host = value.strip().lower().replace("[.]", ".")
            if not re.match(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$", host):
                raise ValueError("expected bare domains such as acme.io")
            out.append(host)
        return out

    @model_validator(mode="after")
    def _unique_source_names(self) -> "Brand":
        names = [s.name for s in self.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"each source name only once per brand; repeated: {', '.join(duplicates)}")
        return self

    def terms(self) -> dict[str, list[str]]:
        return {"name": self.names + self.aliases, "handle": self.handles, "hashtag": self.hashtags,
                "domain": self.domains}


