"""Spikes, weekly digests and the response figures reports read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

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

    def response_rows(self, brand: str | None, since: datetime | None, until: datetime | None = None) -> list[dict]:
        """Every reply clock (brand, source, state, started, deadline) with its first recorded reply time."""
        c, m, r = t.reply_clock.c, t.mentions.c, t.responses.c
        first = (select(func.min(r.responded_at)).where(r.mention_id == c.mention_id).correlate(t.reply_clock)
                 .scalar_subquery())
        query = (select(c.mention_id, c.brand, m.source, c.state, c.started_at, c.deadline,
                        first.label("first_response_at"))
                 .join(t.mentions, m.id == c.mention_id).order_by(c.mention_id))
        if brand is not None:
            query = query.where(c.brand == brand)
        if since is not None:
            query = query.where(c.started_at >= since)
        if until is not None:
            query = query.where(c.started_at < until)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]
