"""Silences: matcher sets with an expiry that hold matching notifications (stored, never lost) until
the silence ends or is expired, then release them to be sent as usual."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, get_args

from monitor.core.labels import Labels
from monitor.config import SOURCE_TYPES, Intent, Sentiment, Settings, channel_name

if TYPE_CHECKING:
    from monitor.core.records import StoredMention

MATCHER_KEYS = ("brand", "source", "intent", "sentiment", "channel")


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: dict[str, str]
    reason: str | None
    created_by: str | None
    starts_at: datetime
    ends_at: datetime
    expired_at: datetime | None
    held: int = 0

    def active(self, now: datetime) -> bool:
        return self.expired_at is None and self.starts_at <= now < self.ends_at

    def ended_at(self) -> datetime:
        return min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.matchers.items()))


def parse_matchers(args: list[str], settings: Settings) -> dict[str, str]:
    """`brand=acme source=x` -> {"brand": "acme", "source": "x"}; raises ValueError naming what is wrong."""
    out: dict[str, str] = {}
    sources = sorted(settings.sources())
    allowed = {
        "brand": sorted(settings.brands),
        "source": sources + list(SOURCE_TYPES),
        "intent": list(get_args(Intent)),
        "sentiment": list(get_args(Sentiment)),
    }
    for arg in args:
        key, sep, value = arg.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"{arg!r}: expected key=value, e.g. brand=acme")
        if key not in MATCHER_KEYS:
            raise ValueError(f"{arg!r}: unknown key {key!r}: expected one of {', '.join(MATCHER_KEYS)}")
        if key in out:
            raise ValueError(f"{arg!r}: {key} given twice")
        if key == "channel":
            try:
                channel_name(value)
            except ValueError as exc:
                raise ValueError(f"{arg!r}: {exc}") from None
        elif value not in allowed[key]:
            raise ValueError(f"{arg!r}: unknown {key} {value!r}: expected one of {', '.join(allowed[key])}")
        out[key] = value
    if not out:
        raise ValueError("expected at least one matcher such as brand=acme (a silence of everything is a "
                         "mistake waiting to happen)")
    return out


def silence_matches(matchers: dict[str, str], brand_id: str, mention: StoredMention, labels: Labels,
                    channel: str) -> bool:
    values = {"brand": {brand_id}, "source": {mention.source_id, mention.source}, "intent": {labels.intent},
              "sentiment": {labels.sentiment}, "channel": {channel}}
    return all(value in values[key] for key, value in matchers.items())


def silencing(silences: list[Silence], brand_id: str, mention: StoredMention, labels: Labels, channel: str,
              now: datetime) -> Silence | None:
    """The first active silence that matches, if any."""
    return next((s for s in silences
                 if s.active(now) and silence_matches(s.matchers, brand_id, mention, labels, channel)), None)
