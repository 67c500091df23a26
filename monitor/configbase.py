"""The types every config model is built from: strict frozen models, durations, channel names and
the settings every HTTP platform shares. Connectors declare their own config models from these (so a
platform is one module), and `monitor.config` assembles them into `Settings`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator

from monitor.query import valid_query

FIRST_POLL_LOOKBACK = timedelta(hours=24)
SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


MAX_DURATION = timedelta(days=36525)  # a century: far enough for "everything", far from overflowing a date


def parse_duration(value: Any) -> timedelta:
    """`90`, `30s`, `10m`, `4h`, `1d`, `1h30m` -> timedelta; plain numbers are seconds. At most a century:
    a longer one is a typo, and a huge one would overflow date arithmetic far from the config."""
    try:
        duration = _parse_duration(value)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, OverflowError) or "too large" in str(exc) or "exceeds" in str(exc):
            raise ValueError(f"expected a duration of at most {MAX_DURATION.days}d") from None
        raise
    if duration > MAX_DURATION:
        raise ValueError(f"expected a duration of at most {MAX_DURATION.days}d")
    return duration


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration for whole seconds: 30s, 5m, 4h, 1h30m, as the config writes them."""
    seconds, out = int(value.total_seconds()), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


def _parse_duration(value: Any) -> timedelta:
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


def http_base_url(url: str) -> str:
    """An http(s) URL without its trailing slash, or a ValueError that says what is expected."""
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("expected an http:// or https:// URL")
    return url.rstrip("/")


class HttpPlatform(Strict):
    """Settings every plain-HTTP platform shares: who we say we are, and how long and how much we read."""

    user_agent: str = Field("mentionwatch/0.1 (+https://github.com/mentionwatch/mentionwatch)",
                            description="User-Agent header of every request")
    connect_timeout: Duration = Field(timedelta(seconds=3.05), description="Longest wait for a connection")
    read_timeout: Duration = Field(timedelta(seconds=15), description="Longest wait for the next bytes of an answer")
    max_bytes: int = Field(5_000_000, gt=0, description="A bigger body is refused (gzip bombs too)")


class ApiPlatform(HttpPlatform):
    """An HTTP platform with one API base URL, overridable for proxies, mirrors and tests."""

    base_url: str

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return http_base_url(url)


def prefixed(prefix: str, values: list[str]) -> list[str]:
    """Accept `acme` or `@acme` (resp. `#acme`); store the prefixed form."""
    out = []
    for value in values:
        bare = value.strip().lstrip(prefix)
        if not bare or re.search(r"\s", bare):
            raise ValueError(f"expected {prefix}name without spaces")
        out.append(prefix + bare)
    return out


class BrandTerms(Protocol):
    """What a connector reads of a brand: its terms (queries are built from them) and its team accounts."""

    names: list[str]
    aliases: list[str]
    handles: list[str]
    hashtags: list[str]
    domains: list[str]
    exclude: list[str]
    query: str | None
    fold_accents: bool
    team: Any


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
