"""What reports, the weekly digest and spike detection read: counts in SQL (GROUP BY brand, UTC day,
source, with each mention's newest labels pivoted into columns; whole days from the `mention_daily`
rollup), the top mentions of a window, the
newest complaints' words (from ix_mentions_complaints) and hourly counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence

from sqlalchemy import Integer, and_, case, func, literal_column, or_, select, union_all
from sqlalchemy.sql import ColumnElement

from alerts.spikes import HourCount
from monitor.core.labels import INTENTS, SENTIMENTS
from monitor.store import schema as t
from monitor.store.base import Repository


m, lab = t.mentions.c, t.labels.c


def mention_time() -> ColumnElement:
    """When a mention was posted; when the platform does not say, when we fetched it."""
    return func.coalesce(m.created_at, m.fetched_at)


def in_window(start: datetime, end: datetime) -> ColumnElement:
    """`mention_time()` in [start, end), written so the (brand, created_at) index serves both branches."""
    return or_(and_(m.created_at >= start, m.created_at < end),
               and_(m.created_at.is_(None), m.fetched_at >= start, m.fetched_at < end))


def newest_labels():
    """labels joined to mentions, only each mention's newest row (created_at, then model name)."""
    newer = t.labels.alias("newer")
    is_newest = ~select(newer.c.mention_id).where(
        newer.c.mention_id == lab.mention_id,
        or_(newer.c.created_at > lab.created_at,
            and_(newer.c.created_at == lab.created_at, newer.c.model > lab.model))).exists()
    return t.mentions.outerjoin(t.labels, and_(lab.mention_id == m.id, is_newest))


def day_bucket(dialect: str) -> ColumnElement:
    """The mention's UTC day as YYYY-MM-DD: SQLite strftime (the expression of the ix_mentions_report index,
    format inlined so that SQLite matches it), PostgreSQL date_trunc."""
    ts = mention_time()
    if dialect == "postgresql":
        return func.to_char(func.date_trunc("day", func.timezone("UTC", ts)), "YYYY-MM-DD")
    return func.strftime(literal_column("'%Y-%m-%d'"), ts)


PIVOT = tuple(f"s_{s}" for s in SENTIMENTS) + tuple(f"i_{i}" for i in INTENTS)


def whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The first UTC midnight at or after `start` and the last at or before `end`: the days in between
    lie wholly in [start, end)."""
    def midnight(moment: datetime) -> datetime:
        return moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

    first = midnight(start)
    return (first if first == start else first + timedelta(days=1)), midnight(end)


def in_days(dialect: str, day: ColumnElement, start: datetime, end: datetime) -> list[ColumnElement]:
    """`mention_time()` in [start, end): on SQLite with the day range that lets it walk ix_mentions_report;
    on PostgreSQL (no such expression index) as ranges of the (brand, created_at) index."""
    if dialect == "postgresql":
        return [in_window(start, end)]
    first, last = (f"{moment.astimezone(timezone.utc):%Y-%m-%d}" for moment in (start, end))
    return [day >= first, day <= last, mention_time() >= start, mention_time() < end]



class ReportRepository(Repository):
    """What reports, the weekly digest and spike detection read."""

    def daily_counts(self, brands: Sequence[str], start: datetime, end: datetime) -> list[tuple]:
        """(brand, UTC day, source, mentions, one count per sentiment, one per intent) in [start, end),
        ordered by brand, day and source.

        Whole UTC days come from the daily rollup (labelled mentions, kept when mentions are pruned) plus
        their mentions not labelled yet; the partial days at either end are counted from the mentions. One
        statement, so one snapshot: a mention labelled meanwhile is counted once.
        """
        brands = list(brands)
        first, last = whole_days(start, end)
        if first < last:
            parts = [self._rolled_up(brands, first, last), self._counted(brands, first, last, unlabelled=True)]
            parts += [self._counted(brands, a, b) for a, b in ((start, first), (last, end)) if a < b]
        else:
            parts = [self._counted(brands, start, end)]
        rows = union_all(*parts).subquery()
        numbers = [func.sum(rows.c[name]) for name in ("volume", *PIVOT)]
        query = (select(rows.c.brand, rows.c.day, rows.c.source, *numbers).group_by(rows.c.brand, rows.c.day, rows.c.source)
                 .order_by(rows.c.brand, rows.c.day, rows.c.source))
        with self.engine.connect() as conn:
            return [tuple(int(v) if i > 2 else v for i, v in enumerate(row)) for row in conn.execute(query)]

    def _counted(self, brands: list[str], start: datetime, end: datetime, unlabelled: bool = False):
        """Counts per brand, day and source straight from the mentions (and their newest labels); with
        `unlabelled`, of those not labelled yet only, found through the classified_at index (the brand is
        wrapped so that SQLite does not walk the window's every mention by brand and day instead)."""
        day = day_bucket(self.engine.dialect.name)
        pivot = [func.sum(case((lab.sentiment == s, 1), else_=0)).label(f"s_{s}") for s in SENTIMENTS]
        pivot += [func.sum(case((lab.intent == i, 1), else_=0)).label(f"i_{i}") for i in INTENTS]
        return (select(m.brand.label("brand"), day.label("day"), m.source.label("source"), func.count().label("volume"),
                       *pivot).select_from(newest_labels())
                .where(*([func.coalesce(m.brand, "").in_(brands), m.classified_at.is_(None)] if unlabelled
                         else [m.brand.in_(brands)]), *in_days(self.engine.dialect.name, day, start, end))
                .group_by(m.brand, day, m.source))

    @staticmethod
    def _rolled_up(brands: list[str], first: datetime, last: datetime):
        """Counts per brand, day and source of the labelled mentions of the days [first, last), from the rollup."""
        d = t.mention_daily.c
        pivot = [func.sum(case((d.sentiment == s, d.count), else_=0)).label(f"s_{s}") for s in SENTIMENTS]
        pivot += [func.sum(case((d.intent == i, d.count), else_=0)).label(f"i_{i}") for i in INTENTS]
        return (select(d.brand.label("brand"), d.day.label("day"), d.source.label("source"),
                       func.sum(d.count).label("volume"), *pivot)
                .where(d.brand.in_(brands), d.day >= f"{first:%Y-%m-%d}", d.day < f"{last:%Y-%m-%d}")
                .group_by(d.brand, d.day, d.source))

    def complaint_texts(self, brand: str, start: datetime, end: datetime, limit: int) -> list[str]:
        """The newest `limit` complaints' words in [start, end): undated mentions (rare) first, then newest first,
        each a walk of ix_mentions_complaints (mentions whose newest label is a complaint) that stops at `limit`."""
        complaint = [m.brand == brand, m.intent == literal_column("'complaint'")]  # the partial index's predicate
        texts = select(m.title, m.text)
        undated = texts.where(*complaint, m.created_at.is_(None), m.fetched_at >= start, m.fetched_at < end)
        dated = texts.where(*complaint, m.created_at >= start, m.created_at < end).order_by(m.created_at.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(undated.limit(limit)).all()
            if len(rows) < limit:
                rows += conn.execute(dated.limit(limit - len(rows))).all()
        return ["\n".join(p for p in (r.title, r.text) if p) for r in rows]

    def top_mentions(self, brand: str, start: datetime, end: datetime, *, intent: str | None = None,
                     sentiment: str | None = None, limit: int) -> list[dict]:
        """The most-engaged mentions (by reach) in the window, with their newest labels."""
        query = (select(m.id, m.source, m.url, m.author, m.title, m.text, m.reach, lab.sentiment, lab.intent)
                 .select_from(newest_labels()).where(m.brand == brand, in_window(start, end)))
        if intent:
            query = query.where(lab.intent == intent)
        if sentiment:
            query = query.where(lab.sentiment == sentiment)
        query = query.order_by(func.coalesce(m.reach, -1).desc(), m.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def hourly_counts(self, brand: str, now: datetime, history: timedelta) -> list[HourCount]:
        """Mentions (and negative ones) per hour ending at `now`, for `history` back: the input of spike detection."""
        start = now - history - timedelta(hours=1)
        ts = mention_time()
        if self.engine.dialect.name == "postgresql":
            hours_ago = func.floor(func.extract("epoch", now - ts) / 3600)
        else:
            hours_ago = func.cast((func.julianday(now.strftime("%Y-%m-%d %H:%M:%S.%f")) - func.julianday(ts)) * 24, Integer)
        hours_ago = hours_ago.label("hours_ago")
        negative = func.sum(case((lab.sentiment == "negative", 1), else_=0)).label("negative")
        query = (select(hours_ago, func.count().label("total"), negative).select_from(newest_labels())
                 .where(m.brand == brand, in_window(start, now)).group_by(hours_ago))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = {int(r.hours_ago): HourCount(int(r.hours_ago), r.total, int(r.negative or 0)) for r in rows}
        span = int(history / timedelta(hours=1))
        return [found.get(h, HourCount(h, 0, 0)) for h in range(span + 1)]
