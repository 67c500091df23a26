"""Response statistics on generated reply clocks with known answers."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from alerts.reply_clock import ClockRow
from monitor.config import Settings
from monitor.core.records import Match, Post
from monitor.responses import (
    ResponseStats,
    nearest_rank,
    response_stats,
    response_table,
)
from monitor.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T0 = NOW - timedelta(days=1)
MIN = timedelta(minutes=1)
SETTINGS = Settings.model_validate({"slack": {"token": "xoxb-test"},
                                    "brands": {"acme": {"names": ["Acme"], "slack_channel": "#acme"},
                                               "zeta": {"names": ["Zeta"], "slack_channel": "#zeta"}}})


class World:
    def __init__(self, store: Store):
        self.store = store
        self.n = 0

    def mention(self, brand: str, source: str, started: datetime, promise: timedelta = 60 * MIN,
                answered_after: timedelta | None = None, state: str = "open") -> int:
        self.n += 1
        (mention_id,) = self.store.commit_poll(f"{brand}/{source}", [(Post(source, str(self.n), "text"),
                                                                      Match({brand: []}))], None, Counter(), started)
        self.store.create_clocks([ClockRow(mention_id=mention_id, brand=brand, state=state, started_at=started,
                                           deadline=started + promise)])
        if answered_after is not None:
            self.store.record_response(mention_id, "acme_help", started + answered_after, None, source, NOW)
        return mention_id


@pytest.fixture
def world(database, tmp_path):
    store = Store(database)
    world = World(store)
    for i in range(10):  # reddit: answered after 10, 20, ..., 100 min; promise 60 min
        world.mention("acme", "reddit", T0 + i * MIN, answered_after=(i + 1) * 10 * MIN, state="handled")
    world.oldest = world.mention("acme", "reddit", T0 - 2 * MIN)            # missed: past its deadline
    world.mention("acme", "reddit", NOW - 10 * MIN)                          # still inside its reply time
    world.mention("acme", "reddit", T0, state="not_relevant")                # not counted at all
    for minutes in (5, 7, 9):
        world.mention("acme", "x", T0 + 3 * 60 * MIN, answered_after=minutes * MIN, state="handled")
    world.mention("zeta", "hackernews", NOW - 3 * 60 * MIN, answered_after=2 * 60 * MIN, state="handled")
    yield world
    store.close()


def test_per_brand_and_source_with_known_answers(database, world):
    stats = response_stats(world.store, SETTINGS, now=NOW)
    assert stats == [
        ResponseStats("acme", "reddit", needing_reply=12, answered=10, median=55 * MIN, p90=90 * MIN,
                      within_promise=6 / 11, oldest_unanswered=(world.oldest, timedelta(days=1, minutes=2))),
        ResponseStats("acme", "x", 3, 3, 7 * MIN, 9 * MIN, 1.0, None),
        ResponseStats("zeta", "hackernews", 1, 1, 120 * MIN, 120 * MIN, 0.0, None),
    ]


def test_brand_and_since_filters(database, world):
    assert [s.brand for s in response_stats(world.store, SETTINGS, brand="zeta", now=NOW)] == ["zeta"]
    recent = response_stats(world.store, SETTINGS, since=NOW - 6 * 60 * MIN, now=NOW)
    assert [(s.brand, s.source, s.needing_reply, s.answered, s.within_promise) for s in recent] == [
        ("acme", "reddit", 1, 0, None), ("zeta", "hackernews", 1, 1, 0.0)]
    earlier = response_stats(world.store, SETTINGS, since=T0, until=T0 + 3 * 60 * MIN, now=NOW)
    assert [(s.brand, s.source, s.needing_reply, s.answered) for s in earlier] == [("acme", "reddit", 10, 10)], \
        "clocks started at or after `until` belong to a later window (the digest's week before)"


def test_nothing_yet():
    assert nearest_rank([], 0.9) is None


@pytest.mark.parametrize("values, share, expected", [
    ([3], 0.9, 3), ([1, 2], 0.5, 1), ([4, 1, 3, 2], 0.9, 4), (list(range(1, 21)), 0.9, 18),
])
def test_nearest_rank(values, share, expected):
    assert nearest_rank([v * MIN for v in values], share) == expected * MIN


def test_table_shows_the_figures(database, world):
    console = Console(record=True, width=160)
    console.print(response_table(response_stats(world.store, SETTINGS, now=NOW)))
    text = console.export_text()
    assert "55 min" in text and "1 h 30 min" in text and "55%" in text and f"#{world.oldest} (1 d)" in text


@pytest.mark.parametrize("count", [1, 2, 7, 10, 31])
def test_percentiles_match_their_definition_over_every_wait(database, count):
    """The store picks the waits at the median's and p90's ranks in SQL; the figures are those of the sorted
    waits, down to microseconds apart (SQLite keeps datetimes as text)."""
    store = Store(database)
    world = World(store)
    waits = [timedelta(minutes=(i * 37) % 4, microseconds=(i * 7919) % 1000) for i in range(count)]
    for i, wait in enumerate(waits):
        world.mention("acme", "reddit", T0 + i * MIN + timedelta(microseconds=i * 13), answered_after=wait,
                      state="handled")
    world.mention("acme", "reddit", T0 - timedelta(microseconds=5))  # the oldest unanswered, by microseconds
    world.mention("acme", "reddit", T0)
    (stats,) = response_stats(store, SETTINGS, now=NOW)
    assert (stats.needing_reply, stats.answered) == (count + 2, count)
    assert (stats.median, stats.p90) == (statistics.median(waits), nearest_rank(waits, 0.9))
    assert stats.oldest_unanswered == (world.n - 1, NOW - (T0 - timedelta(microseconds=5)))
    store.close()
