"""Response statistics from the reply clocks: how many mentions needed an answer and how fast they got one.

Counted per brand and source (platform). A mention needs a reply once its clock started, unless
someone marked it not relevant. Its time to first response runs from the mention's time to the
first reply recorded: by a connector (the team answered on the platform), or Handled in Slack or
the CLI. The share within the promise counts answers by the deadline, out of the mentions whose
outcome is known (answered, or past their deadline unanswered); mentions still inside their
reply time count in neither. Percentiles are nearest-rank.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.table import Table

from alerts.messages import format_age
from monitor.config import Settings
from monitor.store import Store


@dataclass(frozen=True)
class ResponseStats:
    brand: str
    source: str
    needing_reply: int
    answered: int
    median: timedelta | None
    p90: timedelta | None
    within_promise: float | None  # share, 0..1; None when no outcome is known yet
    oldest_unanswered: tuple[int, timedelta] | None  # (mention id, age)


def nearest_rank(values: list[timedelta], share: float) -> timedelta | None:
    """The value at rank ceil(share * n) of the sorted values (nearest-rank): what the store picks in SQL."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def response_stats(store: Store, settings: Settings, *, brand: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, now: datetime) -> list[ResponseStats]:
    """One row per brand and source that had mentions needing a reply (clocks started in [since, until));
    the store counts them and picks the waits at the percentiles' ranks (`nearest_rank`'s definition)."""
    out = []
    for f in sorted(store.response_figures(brand, since, until, now), key=lambda f: (f.brand, f.source)):
        decided = f.answered + f.missed
        out.append(ResponseStats(
            brand=f.brand, source=f.source, needing_reply=f.needing_reply, answered=f.answered,
            median=statistics.median(f.median_waits) if f.median_waits else None, p90=f.p90,
            within_promise=f.in_time / decided if decided else None,
            oldest_unanswered=(f.oldest_unanswered[0], now - f.oldest_unanswered[1]) if f.oldest_unanswered else None))
    return out


def response_table(stats: list[ResponseStats]) -> Table:
    table = Table("brand", "source", "needing reply", "answered", "median", "p90", "within promise",
                  "oldest unanswered", title="Response times")
    for s in stats:
        table.add_row(s.brand, s.source, str(s.needing_reply), str(s.answered),
                      format_age(s.median) if s.median is not None else "–",
                      format_age(s.p90) if s.p90 is not None else "–",
                      f"{s.within_promise:.0%}" if s.within_promise is not None else "–",
                      f"#{s.oldest_unanswered[0]} ({format_age(s.oldest_unanswered[1])})"
                      if s.oldest_unanswered else "–")
    return table
