"""Spikes, weekly digests and the response figures reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy import Float, Integer, String, and_, case, cast, func, or_, select, update
from sqlalchemy.sql import ColumnElement

from monitor.core.records import NewAlert
from monitor.store import schema as t
from monitor.store.base import Repository


class TrendRepository(Repository):
    """Spikes, weekly digests and the response figures reports read."""

    def active_spike(self, brand: str) -> dict | None:
        """The brand's spike in progress (id, metric, started_at, alert_id, calm_since, details), or None."""
        s = t.spikes.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.spikes).where(s.brand == brand, s.state == "active")
                               .order_by(s.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def start_spike(self, brand: str, metric: str, details: dict, alert: NewAlert, now: datetime) -> int | None:
        """The spike row and its alert in one transaction; None when the brand already has a spike running."""
        s, a = t.spikes.c, t.alerts.c
        with self.engine.begin() as conn:
            if conn.execute(select(s.id).where(s.brand == brand, s.state == "active")).first() is not None:
                return None
            self._queue(conn, [alert], now)
            alert_id = conn.execute(select(a.id).where(a.dedupe_key == alert.dedupe_key)).scalar()
            result = conn.execute(t.spikes.insert().values(brand=brand, metric=metric, state="active", started_at=now,
                                                           alert_id=alert_id, details=details))
            return result.inserted_primary_key[0]

    def set_spike_calm(self, spike_id: int, calm_since: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.spikes).where(t.spikes.c.id == spike_id).values(calm_since=calm_since))

    def end_spike(self, spike_id: int, alert: NewAlert, now: datetime) -> bool:
        """Mark the spike ended and queue its "over" message together; False if it had already ended."""
        s = t.spikes.c
        with self.engine.begin() as conn:
            ended = conn.execute(update(t.spikes).where(s.id == spike_id, s.state == "active")
                                 .values(state="ended", ended_at=now)).rowcount
            if ended:
                self._queue(conn, [alert], now)
            return bool(ended)

    def last_digest_week(self, brand: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(t.digests.c.week)).where(t.digests.c.brand == brand)).scalar()

    def commit_digest(self, brand: str, week: str, alert: NewAlert, now: datetime) -> bool:
        """Record the week's digest and queue its upload in one transaction, once per (brand, week) even when
        two processes race or the daemon restarts; returns whether this call queued it."""
        d, a = t.digests.c, t.alerts.c
        with self.engine.begin() as conn:
            claimed = conn.execute(self._insert_ignore(t.digests, ["brand", "week"]).values(
                brand=brand, week=week, created_at=now)).rowcount
            if not claimed:
                return False
            self._queue(conn, [alert], now)
            alert_id = conn.execute(select(a.id).where(a.dedupe_key == alert.dedupe_key)).scalar()
            conn.execute(update(t.digests).where(d.brand == brand, d.week == week).values(alert_id=alert_id))
            return True

    def response_figures(self, brand: str | None, since: datetime | None, until: datetime | None,
                         now: datetime) -> list[ResponseFigures]:
        """Per brand and source, the reply clocks started in [since, until) that were not marked not relevant:
        counts, the first-response waits at the ranks the median and p90 need, the oldest unanswered clock.

        Counted in SQL with window functions, so a year of clocks comes back as a few rows per source."""
        # materialised: PostgreSQL would otherwise repeat the first-reply lookup in each window's expressions
        b = self._clocks(brand, since, until).cte("clocks").prefix_with("MATERIALIZED", dialect="postgresql")
        group, answered = (b.c.brand, b.c.source), b.c.first_response_at.is_not(None)
        kind = (*group, answered)
        n = func.count().over(partition_by=kind)
        ranked = select(
            b.c.mention_id, b.c.brand, b.c.source, b.c.started_at, b.c.first_response_at, answered.label("answered"),
            func.count().over(partition_by=group).label("needing"),
            func.count(b.c.first_response_at).over(partition_by=group).label("n_answered"),
            func.sum(case((b.c.first_response_at <= b.c.deadline, 1), else_=0)).over(partition_by=group)
            .label("in_time"),
            func.sum(case((and_(~answered, b.c.deadline <= now), 1), else_=0)).over(partition_by=group).label("missed"),
            n.label("n"),
            func.row_number().over(partition_by=kind, order_by=self._wait(b.c)).label("wait_rank"),
            func.row_number().over(partition_by=kind, order_by=(b.c.started_at, b.c.mention_id)).label("age_rank"),
        ).subquery("ranked")
        r = ranked.c
        wanted = or_(and_(~r.answered, r.age_rank == 1),
                     and_(r.answered, r.wait_rank.in_([(r.n + 1) // 2, r.n // 2 + 1, _rank_sql(r.n, P90)])))
        query = select(ranked).where(wanted).order_by(r.brand, r.source, r.wait_rank)
        out: dict[tuple[str, str], ResponseFigures] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                fig = out.setdefault((row.brand, row.source), ResponseFigures(
                    row.brand, row.source, int(row.needing), int(row.n_answered), int(row.in_time), int(row.missed)))
                if not row.answered:
                    fig.oldest_unanswered = (row.mention_id, row.started_at)
                    continue
                wait = max(row.first_response_at - row.started_at, timedelta(0))
                if row.wait_rank in ((row.n + 1) // 2, row.n // 2 + 1):
                    fig.median_waits.append(wait)
                if row.wait_rank == rank(row.n, P90):
                    fig.p90 = wait
        return list(out.values())

    @staticmethod
    def _clocks(brand: str | None, since: datetime | None, until: datetime | None):
        """Reply clocks (not `not_relevant`) with their mention's source and first recorded reply time."""
        c, m, r = t.reply_clock.c, t.mentions.c, t.responses.c
        first = (select(func.min(r.responded_at)).where(r.mention_id == c.mention_id).correlate(t.reply_clock)
                 .scalar_subquery())
        query = (select(c.mention_id, c.brand, m.source, c.started_at, c.deadline, first.label("first_response_at"))
                 .join(t.mentions, m.id == c.mention_id).where(c.state != "not_relevant"))
        if brand is not None:
            query = query.where(c.brand == brand)
        if since is not None:
            query = query.where(c.started_at >= since)
        if until is not None:
            query = query.where(c.started_at < until)
        return query

    def _wait(self, clock) -> ColumnElement:
        """first_response_at - started_at, exactly, in an orderable form: an interval on PostgreSQL; on SQLite
        (datetimes stored as text) whole seconds from strftime('%s') and the fraction of a second apart."""
        if self.engine.dialect.name == "postgresql":
            return clock.first_response_at - clock.started_at

        def parts(column):
            text = cast(column, String)
            return cast(func.strftime("%s", text), Integer), cast(func.substr(text, 20), Float)

        (s1, f1), (s0, f0) = parts(clock.first_response_at), parts(clock.started_at)
        return (s1 - s0) * 1_000_000 + func.round((f1 - f0) * 1_000_000)


P90 = Fraction(9, 10)


def rank(n: int, share: Fraction) -> int:
    """The nearest rank (1-based) of `share` among n sorted values: ceil(share * n), at least 1."""
    return max(-(-share.numerator * n // share.denominator), 1)


def _rank_sql(n: ColumnElement, share: Fraction) -> ColumnElement:
    """`rank` in SQL integer arithmetic, for n >= 1."""
    return (n * share.numerator + share.denominator - 1) // share.denominator


@dataclass
class ResponseFigures:
    """What monitor.responses needs of one brand and source: counts, the waits at the median's rank (one, or
    the two middle ones), at the p90's, and the oldest unanswered clock (mention id, started_at)."""

    brand: str
    source: str
    needing_reply: int
    answered: int
    in_time: int
    missed: int  # unanswered and past the deadline
    median_waits: list[timedelta] = field(default_factory=list)
    p90: timedelta | None = None
    oldest_unanswered: tuple[int, datetime] | None = None
