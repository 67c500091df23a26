"""The config file as strict, frozen pydantic models, and the checks behind `mentionwatch validate`.

Unknown keys are errors (a typo must never silently disable a watchlist). Every problem is
reported at once, each as `file:line: key.path: bad value: what is expected`.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal, Mapping, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, SecretStr,
                      ValidationError, ValidationInfo, field_validator, model_validator)

from monitor.logs import REDACTOR, secrets_of
from monitor.query import QueryError, query_problem_at, query_warnings, valid_query
from monitor.yamlsource import LoadedYaml, Path, load_yaml

EX_CONFIG = 78
FIRST_POLL_LOOKBACK = timedelta(hours=24)
_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
_SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def parse_duration(value: Any) -> timedelta:
    """`90`, `30s`, `10m`, `4h`, `1d`, `1h30m` -> timedelta; plain numbers are seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    if isinstance(value, str) and value.strip().isdigit():
        return timedelta(seconds=int(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            d, h, m, s = (int(g or 0) for g in match.groups())
            return timedelta(days=d, hours=h, minutes=m, seconds=s)
    raise ValueError("expected a duration such as 30s, 10m, 4h, 1d or 1h30m")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _at_least_a_second(interval: timedelta) -> timedelta:
    if interval < timedelta(seconds=1):
        raise ValueError("expected an interval of at least 1s")
    return interval


Interval = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_at_least_a_second)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Owned(Strict):
    """A source block: it belongs to the brand it is listed under. Settings stamps the brand id on it, so
    identical blocks under two brands are two sources (they compare unequal) with each brand's terms."""

    _brand: str | None = PrivateAttr(None)
    filter: str | None = Field(None, description="A query (see the README's Queries) this source's posts must "
                               "also satisfy; translated into the platform's search where it has one")

    @field_validator("filter")
    @classmethod
    def _filter_query(cls, text: str | None) -> str | None:
        return valid_query(text)

    @property
    def brand_id(self) -> str | None:
        return self._brand


_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,})$")


def channel_name(name: str) -> str:
    if not _CHANNEL.match(name):
        raise ValueError("expected a channel name such as #acme-alerts (lowercase, no spaces) or a channel id "
                         "such as C0123456789")
    return name


Channel = Annotated[str, AfterValidator(channel_name)]


class StorageConfig(Strict):
    url: str = Field("sqlite:///mentionwatch.db", repr=False,
                     description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://… (may hold a password)")

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgresql")):
            raise ValueError("expected a sqlite:///path or postgresql+psycopg://… URL")
        return url


class SlackActors(Strict):
    """Who may press Handled, Snooze, Not relevant and Wrong label (default: members of the alert's channel)."""

    usergroup: str | None = Field(None, pattern=r"^S[A-Z0-9]{2,}$", description="Slack user group id, S…")
    channel: str | None = Field(None, description="Members of this channel may act")


class SlackConfig(Strict):
    token: SecretStr = Field(description="Bot token (xoxb-…), from ${SLACK_BOT_TOKEN}")
    app_token: SecretStr | None = Field(None, description="App-level token (xapp-…) for Socket Mode actions, "
                                                          "from ${SLACK_APP_TOKEN}; without it use the CLI")
    base_url: str = "https://slack.com/api/"
    timeout: Duration = timedelta(seconds=10)
    ops_channel: Channel | None = Field(None, description="Where source-health messages go")
    rate_limit_retries: int = Field(2, ge=0, le=5)
    channel_messages_per_minute: int = Field(20, ge=0, le=600, description="Top-level messages a channel gets "
                                             "per minute; more go into the thread of the latest (0: no budget)")
    actors: SlackActors = SlackActors()


class HttpPlatform(Strict):
    """Settings every plain-HTTP platform shares: who we say we are, and how long and how much we read."""

    user_agent: str = "mentionwatch/0.1 (+https://github.com/mentionwatch/mentionwatch)"
    connect_timeout: Duration = timedelta(seconds=3.05)
    read_timeout: Duration = timedelta(seconds=15)
    max_bytes: int = Field(5_000_000, gt=0, description="A bigger body is refused (gzip bombs too)")


class FeedsPlatform(HttpPlatform):
    max_entries: int = Field(500, gt=0)


class ClassifierConfig(Strict):
    kind: Literal["lexicon", "transformer"] = "lexicon"
    batch_size: int = Field(32, gt=0, le=1024)


class DaemonConfig(Strict):
    process_interval: Duration = Field(timedelta(seconds=5), description="How often classify/route/send runs")
    jitter: float = Field(0.1, ge=0, le=1, description="Share of each source's interval added at random")
    workers: int = Field(8, gt=0, le=64)
    shutdown_grace: Duration = timedelta(seconds=4)
    backfill_after: Duration = Field(timedelta(hours=1), description="A source back after a longer outage (or "
                                     "downtime) stores what it finds as backfill: one summary per brand, no "
                                     "alert or escalation per old mention")
    backfill_older_than: Duration = Field(timedelta(minutes=10), description="What such a poll finds that was "
                                          "published longer ago than this is backfill; newer posts alert as usual")
    backfill_wait: Duration = Field(timedelta(seconds=30), description="A brand's backfill summary waits until "
                                    "its sources have found nothing more to backfill for this long")


class FeedSource(Owned):
    type: Literal["feed"]
    name: str = Field(pattern=_SLUG)
    url: str
    interval: Interval = timedelta(minutes=15)
    require_match: bool = Field(True, description="False: every entry is this brand's mention (e.g. Google Alerts)")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll (of a new source, or a new "
                                          "install) stores items published this long ago at most, as backfill")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+", url):
            raise ValueError("expected an http:// or https:// URL")
        return url


def _base_url(url: str) -> str:
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("expected an http:// or https:// URL")
    return url.rstrip("/")


class ApiPlatform(HttpPlatform):
    """An HTTP platform with one API base URL, overridable for proxies, mirrors and tests."""

    base_url: str

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _base_url(url)


class AppStorePlatform(ApiPlatform):
    """Apple's public customer-reviews feed: most recent first, 50 reviews a page, 10 pages at most."""

    base_url: str = "https://itunes.apple.com"
    max_pages: int = Field(10, ge=1, le=10, description="Pages read per app and country per poll")
    initial_pages: int = Field(1, ge=1, le=10, description="Pages read on the first poll of an app and country")
    late_window: Duration = Field(timedelta(hours=2), description="Reviews published up to this long after their "
                                  "timestamp (moderation) are still picked up")


class AppStoreSource(Owned):
    type: Literal["app_store"]
    name: str = Field(pattern=_SLUG)
    apps: list[str] = Field(min_length=1, description="Numeric App Store ids (the digits after /id in the app's URL)")
    countries: list[str] = Field(["us"], min_length=1, description="Storefront country codes such as us, gb, de")
    interval: Interval = timedelta(minutes=30)
    require_match: bool = Field(False, description="Reviews of the brand's own app are its mentions even without its name")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll (of a new source, or a new "
                                          "install) stores items published this long ago at most, as backfill")
    needs_reply_at_or_below: int = Field(2, ge=0, le=5, description="Star ratings that need a reply whatever the text says; 0: off")

    @field_validator("apps", mode="before")
    @classmethod
    def _app_ids(cls, values: Any) -> Any:
        """Ids are numbers in YAML more often than not; keep them as strings."""
        if not isinstance(values, list):
            return values
        out = []
        for value in values:
            digits = str(value).strip().removeprefix("id")
            if not digits.isdigit():
                raise ValueError("expected numeric app ids such as 1234567890 (from apps.apple.com/…/id1234567890)")
            out.append(digits)
        return out

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, values: list[str]) -> list[str]:
        out = [v.strip().lower() for v in values]
        if any(not re.match(r"^[a-z]{2}$", v) for v in out):
            raise ValueError("expected two-letter country codes such as us, gb, de")
        return out


class HackerNewsPlatform(ApiPlatform):
    """The public Algolia HN Search API (`search_by_date`, newest first)."""

    base_url: str = "https://hn.algolia.com/api/v1"
    hits_per_page: int = Field(100, ge=1, le=1000)
    max_pages: int = Field(5, ge=1, le=50, description="Pages read per query per poll; the rest waits for the next poll")
    initial_pages: int = Field(1, ge=1, le=50, description="Pages read on the first poll of a query")
    late_window: Duration = Field(timedelta(minutes=10), description="Items indexed up to this long after they "
                                  "were posted are still picked up")


class HackerNewsSource(Owned):
    type: Literal["hackernews"]
    name: str = Field(pattern=_SLUG)
    queries: list[str] = Field([], description="Search queries; default: the brand's names, aliases and domains")
    comments: bool = Field(True, description="Search comments as well as stories")
    interval: Interval = timedelta(minutes=5)
    require_match: bool = True
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="A first poll (of a new source, or a new "
                                          "install) stores items published this long ago at most, as backfill")

    @field_validator("queries")
    @classmethod
    def _not_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("expected non-empty queries")
        return [v.strip() for v in values]


class RedditPlatform(Strict):
    """One Reddit app (https://www.reddit.com/prefs/apps): its credentials and the request budget all
    Reddit sources share. Script apps add username/password; a refresh_token works too."""

    client_id: SecretStr = Field(description="The app's id, from ${REDDIT_CLIENT_ID}")
    client_secret: SecretStr = Field(description="From ${REDDIT_CLIENT_SECRET}")
    username: str | None = None
    password: SecretStr | None = None
    refresh_token: SecretStr | None = None
    user_agent: str = Field("mentionwatch/0.1 (self-hosted brand monitor)", min_length=7,
                            description="Reddit asks for a unique, descriptive one, e.g. with your u/name")
    oauth_url: str = "https://oauth.reddit.com"
    reddit_url: str = "https://www.reddit.com"
    timeout: Duration = Field(timedelta(seconds=10), description="Per request; praw retries a timeout twice")
    max_bytes: int = Field(10_000_000, gt=0, description="A bigger answer is refused (gzip bombs too)")
    requests_per_minute: int = Field(100, gt=0, le=6000, description="Shared by every Reddit source of this app")
    max_wait: Duration = Field(timedelta(seconds=5), description="Longest in-poll wait for the budget; longer "
                               "waits reschedule the poll instead")
    first_poll_lookback: Duration = Field(FIRST_POLL_LOOKBACK, description="Items older than this are skipped on a "
                                          "listing's first poll (a source's own first_poll_lookback wins)")
    reply_checks_per_poll: int = Field(5, ge=0, le=20, description="Waiting comments whose subtree is read per "
                                       "poll for a deeper team reply (the team's own listings cover the rest)")
    reply_recheck: Duration = Field(timedelta(minutes=10), description="How often one mention's thread is re-checked")

    @field_validator("oauth_url", "reddit_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _base_url(url)

    @model_validator(mode="after")
    def _login_complete(self) -> "RedditPlatform":
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together (a script app), or leave both out")
        if self.password and self.refresh_token:
            raise ValueError("use either username/password or refresh_token, not both")
        return self


class RedditSource(Owned):
    """New posts or new comments of subreddits, or Reddit search sorted by new: one listing per
    subreddit (or query), each with its own cursor."""

    type: Literal["reddit"]
    name: str = Field(pattern=_SLUG)
    what: Literal["posts", "comments", "search"] = "posts"
    subreddits: list[str] = Field([], validate_default=True, description="posts/comments: the subreddits to "
                                  "read; search: restrict the search to these (default: all of Reddit)")
    query: str | None = Field(None, description="search only; default: the brand's names, aliases and domains")
    interval: Interval = timedelta(minutes=2)
    require_match: bool = Field(True, description="False: every item is this brand's mention (its own subreddit)")
    first_poll_lookback: Duration | None = Field(None, description="A first poll stores items published this long "
                                                 "ago at most, as backfill (default: reddit.first_poll_lookback, 24 h)")

    @field_validator("subreddits")
    @classmethod
    def _subreddit_names(cls, values: list[str], info: ValidationInfo) -> list[str]:
        out = []
        for value in values:
            bare = re.sub(r"^/?r/", "", value.strip())
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$", bare):
                raise ValueError(f"expected subreddit names such as acmecloud or r/acmecloud, got {value!r}")
            out.append(bare)
        if not out and info.data.get("what", "search") != "search":
            raise ValueError(f"what: {info.data['what']} needs at least one subreddit")
        return out

    @field_validator("query")
    @classmethod
    def _search_only(cls, query: str | None, info: ValidationInfo) -> str | None:
        if query is not None and info.data.get("what") != "search":
            raise ValueError("query is only for what: search")
        if query is not None and not query.strip():
            raise ValueError("expected a non-empty query, or leave it out to search for the brand's terms")
        return query


class XPlatform(Strict):
    """One X app (a Project's app-only bearer token): X bills every post read and caps reads per
    month by plan, so every X source spends from this app's monthly read cap."""

    bearer_token: SecretStr = Field(description="The app's bearer token, from ${X_BEARER_TOKEN}")
    app: str = Field("default", pattern=_SLUG, description="Name the reads are counted under in the store")
    monthly_read_cap: int = Field(10_000, ge=0, description="Post reads per month your plan allows; the X "
                                  "sources pause when the next page could exceed it and resume on the 1st")
    base_url: str = "https://api.twitter.com"
    connect_timeout: Duration = timedelta(seconds=3.05)
    read_timeout: Duration = timedelta(seconds=20)
    max_bytes: int = Field(5_000_000, gt=0, description="A bigger answer is refused (gzip bombs too)")
    max_results: int = Field(100, ge=10, le=100, description="Posts per page (X allows 10 to 100)")
    max_pages: int = Field(5, ge=1, le=50, description="Pages per query per poll; the rest waits for the next poll")
    initial_pages: int = Field(1, ge=1, le=50, description="Pages read on a query's first poll (older posts of "
                               "the 7-day window are recorded as a gap, not read)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _base_url(url)


class XSource(Owned):
    """X recent search (the last 7 days) and the mentions timelines of the brand's own handles."""

    type: Literal["x"]
    name: str = Field(pattern=_SLUG)
    search: bool = Field(True, description="Run a recent search with `query`")
    query: str | None = Field(None, min_length=1, max_length=1024, description="Verbatim X search syntax; default: "
                              "the brand's names, aliases, handles, hashtags and domains, without retweets")
    mentions: bool = Field(True, description="Read the mentions timeline of each of the brand's handles")
    expected_posts_per_day: int = Field(50, ge=0, description="Posts per day you expect per query or timeline: "
                                        "`validate` estimates the monthly reads from it")
    interval: Interval = timedelta(minutes=5)
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


# Each connector adds its source model here; the `type` key picks the model.
Source = Annotated[Union[FeedSource, AppStoreSource, HackerNewsSource, RedditSource, XSource],
                   Field(discriminator="type")]


class TeamAccounts(Strict):
    """The brand's own accounts: their replies answer a mention, their posts are never alerted on."""

    reddit: list[str] = Field([], description="Reddit usernames, without u/")
    x: list[str] = Field([], description="X handles of the team, with or without @")
    hackernews: list[str] = Field([], description="Hacker News usernames of the team")


def _prefixed(prefix: str, values: list[str]) -> list[str]:
    """Accept `acme` or `@acme` (resp. `#acme`); store the prefixed form."""
    out = []
    for value in values:
        bare = value.strip().lstrip(prefix)
        if not bare or re.search(r"\s", bare):
            raise ValueError(f"expected {prefix}name without spaces")
        out.append(prefix + bare)
    return out


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

    timezone: TimeZone = "UTC"
    days: list[Weekday] = list(WEEKDAYS)
    start: ClockTime
    end: ClockTime


class DigestConfig(Strict):
    """The weekly digest: sent at `day` `at` in `timezone` about the ISO week that just finished."""

    enabled: bool = True
    day: Weekday = "mon"
    at: time = time(9, 0)
    timezone: TimeZone = "UTC"
    channel: Channel | None = Field(None, description="Default: the brand's slack_channel")
    chart_weeks: int = Field(8, ge=2, le=52, description="Weeks of history the digest's chart shows")


class SpikeConfig(Strict):
    """A spike: the last hour far above the same hour of the week in the baseline (median and MAD)."""

    enabled: bool = True
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
    aliases: list[str] = []
    handles: list[str] = []
    hashtags: list[str] = []
    domains: list[str] = []
    exclude: list[str] = Field([], description="Phrases that make a match not about this brand")
    query: str | None = Field(None, description="A query (see the README's Queries) that replaces the names, "
                              "aliases, handles, hashtags and domains in deciding what is a mention")
    fold_accents: bool = Field(True, description="Acmé, Äcme and Acme are the same name (false: accents count)")
    slack_channel: Channel
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
    sources: list[Source] = []

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
        return _prefixed("@", values)

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
        return _prefixed("#", values)

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


class RouteMatch(Strict):
    """Every key given must hold (lists mean any of); an empty match matches every mention."""

    brand: list[str] | None = None
    source: list[str] | None = Field(None, description="Source ids (brand/name) or types (reddit, x, feed, …)")
    sentiment: list[Sentiment] | None = None
    intent: list[Intent] | None = None
    needs_reply: bool | None = None
    reach_at_least: int | None = Field(None, ge=0, description="Score, points or followers")
    language: list[str] | None = None
    keywords: list[str] | None = Field(None, description="Any of these phrases in the text (case-insensitive)")


GroupLabel = Literal["brand", "source", "intent", "sentiment", "route", "mention"]


class Route(Strict):
    """A node of the route tree; unset settings are inherited from the parent (Alertmanager style)."""

    match: RouteMatch = RouteMatch()
    continue_: bool = Field(False, alias="continue")
    channel: Channel | None = Field(None, description="Default at the root: the brand's slack_channel")
    group_by: list[GroupLabel] | None = Field(None, description="Labels whose values split a route's mentions "
                                              "into messages (default: brand); `mention`: one message each")
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Promise | None = Field(None, description="Reminder cadence after the deadline (at least 1m)")
    quiet_hours: WeeklyHours | None = None
    urgent: bool | None = Field(None, description="Urgent alerts are sent during quiet hours")
    escalation_channel: Channel | None = None
    escalate_to: list[Annotated[str, Field(pattern=r"^[SUW][A-Z0-9]{2,}$")]] | None = Field(
        None, description="Slack user group (S…) or user (U…/W…) ids to ping")
    routes: list["Route"] = []


class Settings(Strict):
    storage: StorageConfig = StorageConfig()
    slack: SlackConfig
    classifier: ClassifierConfig = ClassifierConfig()
    daemon: DaemonConfig = DaemonConfig()
    feeds: FeedsPlatform = FeedsPlatform()
    app_store: AppStorePlatform = AppStorePlatform()
    hackernews: HackerNewsPlatform = HackerNewsPlatform()
    reddit: RedditPlatform | None = Field(None, description="Required once a brand has a `type: reddit` source")
    x: XPlatform | None = Field(None, description="Required once a brand has a `type: x` source")
    routes: Route = Field(Route(), description="The alert route tree; its root matches every mention")
    brands: dict[Annotated[str, Field(pattern=_SLUG)], Brand] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_secrets(self) -> "Settings":
        """Every SecretStr of a config is known to the one redaction from the moment it exists."""
        REDACTOR.update(secrets_of(self))
        return self

    @field_validator("routes")
    @classmethod
    def _root_matches_everything(cls, root: Route) -> Route:
        """Every mention enters at the root; a root `match` or `continue` would silently drop or mislead."""
        if {"match", "continue_"} & root.model_fields_set:
            raise ValueError("the root route matches every mention: move `match`/`continue` into a child "
                             "under routes.routes")
        return root

    @field_validator("brands")
    @classmethod
    def _reddit_credentials(cls, brands: dict[str, Brand], info: ValidationInfo) -> dict[str, Brand]:
        """A Reddit source cannot run without the app's credentials (an invalid `reddit:` is reported on its own)."""
        if "reddit" in info.data and info.data["reddit"] is None:
            needy = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources if s.type == "reddit"]
            if needy:
                raise ValueError(f"no `reddit:` section with client_id and client_secret (from ${{REDDIT_CLIENT_ID}}, "
                                 f"${{REDDIT_CLIENT_SECRET}}), which Reddit sources need: {', '.join(needy)}")
        return brands

    @field_validator("brands")
    @classmethod
    def _x_sources(cls, brands: dict[str, Brand], info: ValidationInfo) -> dict[str, Brand]:
        """An X source needs something to read and the app's bearer token (an invalid `x:` is reported on its own)."""
        idle = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources
                if s.type == "x" and not s.search and not b.handles]
        if idle:
            raise ValueError(f"X source {', '.join(idle)} has search: false and its brand has no handles whose "
                             "mentions to read: turn search on or add handles")
        if "x" in info.data and info.data["x"] is None:
            needy = [f"{bid}/{s.name}" for bid, b in brands.items() for s in b.sources if s.type == "x"]
            if needy:
                raise ValueError(f"X source {', '.join(needy)} needs a top-level `x:` section with "
                                 "bearer_token (from ${X_BEARER_TOKEN})")
        return brands

    @model_validator(mode="after")
    def _stamp_owners(self) -> "Settings":
        """Each source learns its brand: the one place a source is mapped back to its brand and terms."""
        for brand_id, brand in self.brands.items():
            for source in brand.sources:
                source._brand = brand_id
        return self

    def brand_of(self, source) -> tuple[str, "Brand"]:
        """The brand a configured source is listed under, by its stamp: identical blocks under different
        brands are different sources (a stamped source only equals a block of its own brand)."""
        brand_id = getattr(source, "brand_id", None)
        if brand_id in self.brands and source in self.brands[brand_id].sources:
            return brand_id, self.brands[brand_id]
        raise ValueError(f"source {getattr(source, 'name', source)!r} belongs to no brand of these settings")

    def sources(self) -> dict[str, tuple[str, Source]]:
        """Every configured source by id (`brand/name`), with its brand."""
        return {f"{brand}/{src.name}": (brand, src) for brand, b in self.brands.items() for src in b.sources}


SECRET_FIELDS = frozenset(
    name for model in (SlackConfig, StorageConfig, RedditPlatform, XPlatform) for name, f in model.model_fields.items()
    if f.annotation is SecretStr
)


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int
    path: str
    value: str
    expected: str
    warning: bool = False
    column: int | None = None
    caret: str | None = None  # the file's line with a caret under the problem

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        where = f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")
        text = f"{where}: {prefix}{self.path or '(top)'}: {self.value}: {self.expected}"
        return text + ("\n" + self.caret if self.caret else "")


class ConfigError(Exception):
    """Raised with every problem in the file, never with a secret value in its text."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _show(value: Any, secret: bool) -> str:
    if secret:
        return "<secret>"
    if isinstance(value, (dict, list)):
        return "(" + type(value).__name__ + ")"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…'"


def _locate(loc: tuple, loaded: LoadedYaml) -> tuple[Path, int]:
    """Map a pydantic error location to the YAML path and line, skipping union tags."""
    path: Path = ()
    node: Any = loaded.data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node, path = node[part], path + (part,)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node, path = node[part], path + (part,)
        elif isinstance(node, dict) and node.get("type") == part:
            continue  # the tag pydantic adds for a member of a tagged union
        elif i == len(loc) - 1 and isinstance(node, dict):
            return path + (part,), loaded.lines.get(path, 1)
    return path, loaded.lines.get(path, 1)


def _problems_from_validation(exc: ValidationError, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        path, line = _locate(err["loc"], loaded)
        secret = bool(path) and (path[-1] in SECRET_FIELDS or path == ("storage", "url")
                                 or any(p[:len(path)] == path for p in loaded.from_env))
        dotted = ".".join(str(p) for p in path)
        if err["type"] == "missing":
            value, expected = "missing", "a value is required"
        elif err["type"] == "extra_forbidden":
            value, expected = _show(path[-1], False), "unknown key (check spelling; see config.yaml for the keys)"
        else:
            value = _show(err.get("input"), secret)
            expected = err["msg"].removeprefix("Value error, ")
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, QueryError):
            line, column, caret = query_problem_at(error, loaded.scalars.get(path), loaded.text)
            problems.append(ConfigProblem(file, line, dotted, value, error.reason, column=column, caret=caret))
            continue
        problems.append(ConfigProblem(file, line, dotted, value, expected))
    return problems


def _warnings(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    """Likely mistakes that still leave a runnable config."""
    out = []
    owner: dict[str, str] = {}
    for brand_id, brand in settings.brands.items():
        if not brand.sources:
            out.append(ConfigProblem(file, loaded.lines.get(("brands", brand_id), 1), f"brands.{brand_id}.sources",
                                     "[]", "no sources: this brand is only matched in other brands' sources",
                                     warning=True))
        for kind, terms in brand.terms().items():
            for term in terms:
                key = term.casefold()
                if key in owner and owner[key] != brand_id:
                    out.append(ConfigProblem(file, loaded.lines.get(("brands", brand_id), 1),
                                             f"brands.{brand_id}", repr(term),
                                             f"also a term of brand {owner[key]}: posts will match both",
                                             warning=True))
                owner.setdefault(key, brand_id)
    out += [ConfigProblem(file, loaded.lines.get(path, 1), ".".join(map(str, path)), text, expected, warning=True)
            for path, text, expected in query_warnings(settings)]
    return (out + _reddit_budget_warnings(settings, loaded, file) + _x_budget_warnings(settings, loaded, file)
            + route_problems(settings, loaded, file))


SOURCE_TYPES = ("feed", "app_store", "hackernews", "reddit", "x")
_LIST_KEYS = ("brand", "source", "sentiment", "intent", "language")


def route_problems(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    """Routes that can never match: each reported where it is written, with what makes it unreachable."""
    known_sources = set(settings.sources()) | set(SOURCE_TYPES)
    out: list[ConfigProblem] = []

    def problem(path: Path, value: str, expected: str) -> None:
        line = loaded.lines.get(path, loaded.lines.get(path[:-1], loaded.lines.get(("routes",), 1)))
        out.append(ConfigProblem(file, line, ".".join(map(str, path)), value, expected, warning=True))

    def walk(route: Route, path: Path, allowed: dict[str, set | bool]) -> None:
        for i, child in enumerate(route.routes):
            here = path + ("routes", i)
            m = child.match
            earlier = route.routes[:i]
            if any(s.match == RouteMatch() and not s.continue_ for s in earlier):
                problem(here, "(route)", "never reached: an earlier sibling matches everything and has no "
                        "`continue: true`")
            unknown_brands = sorted(set(m.brand or ()) - set(settings.brands))
            if unknown_brands:
                problem(here + ("match", "brand"), ", ".join(unknown_brands),
                        f"no such brand (brands: {', '.join(sorted(settings.brands))})")
            unknown_sources = sorted(set(m.source or ()) - known_sources)
            if unknown_sources:
                problem(here + ("match", "source"), ", ".join(unknown_sources),
                        "no such source: expected a source id (brand/name) or a type (" + ", ".join(SOURCE_TYPES) + ")")
            if m.intent is not None and set(m.intent) == {"praise"}:
                problem(here + ("match", "intent"), "[praise]", "praise never enters the route tree (it goes to "
                        "kudos, with a reply clock when it speaks to the brand): set the brand's kudos_channel "
                        "to receive praise")
            narrowed = dict(allowed)
            for key in _LIST_KEYS:
                value = getattr(m, key)
                if value is None:
                    continue
                if key in narrowed and not (set(value) & narrowed[key]):
                    problem(here + ("match", key), ", ".join(value),
                            f"contradicts the parent route, which only lets {key} "
                            f"{', '.join(sorted(narrowed[key]))} through: this route can never match")
                narrowed[key] = set(value) & narrowed[key] if key in narrowed else set(value)
            if m.needs_reply is not None:
                if "needs_reply" in narrowed and narrowed["needs_reply"] != m.needs_reply:
                    problem(here + ("match", "needs_reply"), str(m.needs_reply).lower(),
                            "contradicts the parent route's needs_reply: this route can never match")
                narrowed["needs_reply"] = m.needs_reply
            walk(child, here, narrowed)

    walk(settings.routes, ("routes",), {})
    return out


def channel_settings(settings: Settings) -> list[tuple[Path, str]]:
    """Every Slack channel the config names, with its key path (for `validate --check-slack`)."""
    out: list[tuple[Path, str]] = []
    if settings.slack.ops_channel:
        out.append((("slack", "ops_channel"), settings.slack.ops_channel))
    for brand_id, brand in settings.brands.items():
        out.append((("brands", brand_id, "slack_channel"), brand.slack_channel))
        if brand.kudos_channel:
            out.append((("brands", brand_id, "kudos_channel"), brand.kudos_channel))
        if brand.digest.channel:
            out.append((("brands", brand_id, "digest", "channel"), brand.digest.channel))

    def walk(route: Route, path: Path) -> None:
        for key in ("channel", "escalation_channel"):
            if getattr(route, key):
                out.append((path + (key,), getattr(route, key)))
        for i, child in enumerate(route.routes):
            walk(child, path + ("routes", i))

    walk(settings.routes, ("routes",))
    return out


def _x_budget_warnings(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    """X bills each post read: an estimate above the plan's cap means the X sources pause mid-month."""
    if settings.x is None:
        return []
    from connectors.x import reads_per_month  # imported late: connectors import this module

    need, cap = reads_per_month(settings), settings.x.monthly_read_cap
    if need <= cap:
        return []
    return [ConfigProblem(file, loaded.lines.get(("x", "monthly_read_cap"), loaded.lines.get(("x",), 1)),
                          "x.monthly_read_cap", f"{cap:,}",
                          f"the X sources are estimated to read about {need:,} posts a month (from each "
                          "source's expected_posts_per_day), more than this cap: they will pause until the "
                          "next month once it is spent; narrow the queries or raise the cap", warning=True)]


def _reddit_budget_warnings(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    """All Reddit sources share one app's budget: needing more than it allows makes every poll late."""
    if settings.reddit is None:
        return []
    from connectors.reddit import requests_per_minute  # imported late: connectors import this module

    need, budget = requests_per_minute(settings), settings.reddit.requests_per_minute
    if need <= budget:
        return []
    return [ConfigProblem(file, loaded.lines.get(("reddit",), 1), "reddit.requests_per_minute", str(budget),
                          f"the Reddit sources need about {need:.0f} requests a minute (one per subreddit or "
                          "query per poll), more than this budget: polls will run late; lengthen their "
                          "intervals or watch fewer subreddits", warning=True)]


def _environment(settings: Settings, loaded: LoadedYaml, file: str) -> list[ConfigProblem]:
    url = settings.storage.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        directory = FsPath(url.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not directory.is_dir() or not os.access(directory, os.W_OK):
            return [ConfigProblem(file, loaded.lines.get(("storage", "url"), 1), "storage.url", "<hidden>",
                                  f"a writable directory ({directory} is missing or read-only)")]
    return []


def load_settings(path: str | os.PathLike, env: Mapping[str, str] | None = None,
                  check_environment: bool = True) -> tuple[Settings, list[ConfigProblem]]:
    """Load and check a config file; raises ConfigError with every problem; returns warnings."""
    file = str(path)
    try:
        raw = FsPath(path).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, 0, "", repr(file), f"a readable file ({exc.strerror})")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(file, line, "", f"byte 0x{raw[exc.start]:02x}", "UTF-8 text")]) from None
    loaded = load_yaml(text, env)
    REDACTOR.update(loaded.env_values)  # before any error message can quote one
    problems = [ConfigProblem(file, e.line, ".".join(map(str, e.path)), _show(e.value, False), e.expected)
                for e in loaded.errors]
    if loaded.data is None:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    if not isinstance(loaded.data, dict):
        problems.append(ConfigProblem(file, 1, "", "(not a mapping)", "a mapping of settings at the top level"))
        raise ConfigError(problems)
    try:
        settings = Settings.model_validate(loaded.data)
    except ValidationError as exc:
        problems += _problems_from_validation(exc, loaded, file)
        raise ConfigError(sorted(problems, key=lambda p: p.line)) from None
    if check_environment:
        problems += _environment(settings, loaded, file)
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return settings, _warnings(settings, loaded, file)
