"""Where the streaming sources stand (Bluesky's Jetstream, Mastodon streams): for `mentionwatch status`.

A streaming source's cursor is a place in the stream's time. Its *cursor age* (now minus that place)
says how old the newest thing it has committed is: it grows while the daemon is down or the source
is stuck. Its *lag* (when the cursor was committed minus that place) says how far behind the stream
the source was at its last poll: it grows when the sources cannot keep up. A quiet Mastodon hashtag
ages without being behind; Bluesky's firehose is never quiet, so there both mean trouble."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.registry import platform


@dataclass(frozen=True)
class StreamPosition:
    source_id: str
    position: datetime
    committed_at: datetime
    cursor_age_s: float
    lag_s: float

    def as_json(self) -> dict:
        return {"source_id": self.source_id, "position": self.position.isoformat(),
                "committed_at": self.committed_at.isoformat(), "cursor_age_seconds": round(self.cursor_age_s, 1),
                "lag_seconds": round(self.lag_s, 1)}


def stream_positions(sources: dict, cursors: dict[str, tuple[dict, datetime]], now: datetime) -> list[StreamPosition]:
    """Each streaming source with a committed cursor (`sources`: id -> (brand, source), as `Settings.sources()`)."""
    out = []
    for sid, (_, source) in sources.items():
        place = platform(source.type).position
        if place is None or sid not in cursors:
            continue
        value, committed = cursors[sid]
        at = place(source, value or {})
        if at is not None:
            out.append(StreamPosition(sid, at, committed, (now - at).total_seconds(), (committed - at).total_seconds()))
    return out


def seconds(value: float) -> str:
    """A duration as people read it: 4 s, 12 min, 3.5 h, 2.0 d."""
    value = max(value, 0.0)
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h" if value < 172800 else f"{value / 86400:.1f} d"
