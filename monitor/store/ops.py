"""What an operator's checks read: the outbox's backlog, open reply clocks, the classifier's queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, exists, func, select

from monitor.store import schema as t
from monitor.store.base import Repository


@dataclass(frozen=True)
class OutboxBacklog:
    """Messages not yet settled (`pending` or `sending`) and when the oldest of them was queued."""

    waiting: int
    oldest: datetime | None


class OpsRepository(Repository):
    """Read-only summaries for `status`, `/metrics` and `/readyz`: a few aggregate queries each."""

    def outbox_backlog(self) -> OutboxBacklog:
        a = t.alerts.c
        with self.engine.connect() as conn:
            row = conn.execute(select(func.count(), func.min(a.created_at))
                               .where(a.state.in_(("pending", "sending")))).one()
        return OutboxBacklog(row[0], row[1])

    def reply_clocks_by_brand(self, now: datetime) -> dict[str, tuple[int, int]]:
        """Per brand: open clocks (open or snoozed) and how many of them are past their deadline."""
        c = t.reply_clock.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.brand, func.count(), func.sum(case((c.deadline < now, 1), else_=0)))
                                .where(c.state.in_(("open", "snoozed"))).group_by(c.brand)).all()
        return {brand: (count, int(overdue or 0)) for brand, count, overdue in rows}

    def unlabelled_count(self) -> int:
        """Mentions waiting for the classifier (no label row yet)."""
        m, lab = t.mentions.c, t.labels.c
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.mentions)
                                .where(~exists().where(lab.mention_id == m.id))).scalar_one()

    def unrouted_count(self) -> int:
        """Labelled mentions not yet routed (a backlog summarised per brand is not routed one by one)."""
        m = t.mentions.c
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(m.classified_at.is_not(None), m.routed_at.is_(None),
                                                           m.extra["backfill"].as_string().is_(None))).scalar_one()

    def waiting_notifications(self) -> int:
        """Routed mentions waiting in their group for its next message (`group_wait`, quiet hours)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.notifications)
                                .where(t.notifications.c.state == "waiting")).scalar_one()
