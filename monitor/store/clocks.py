"""Reply clocks: created, read, and moved from state to state."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import and_, case, func, or_, select, update

from alerts.attention import CLOCK_INTENTS
from alerts.reply_clock import OPEN_STATES, ClockRow
from monitor.core.labels import Labels
from monitor.core.records import KUDOS_ROUTE, NewAlert, StatusUpdate, StoredMention
from monitor.store import schema as t
from monitor.store.base import Repository, _labels, _mention


class ClockRepository(Repository):
    """Reply clocks: created, read, and moved from state to state."""

    def clock_candidates(self, routed_since: datetime, limit: int = 500) -> list[tuple[StoredMention, Labels, str]]:
        """Mentions routed since `routed_since` and notified (not silenced, dropped or attached to a
        cross-post's item) that may need a reply and have no clock yet, each with its newest labels and
        the brand it was notified for (an alert's before kudos'), in routing order. The filter is a superset of
        `alerts.attention`'s reply clock, which the caller applies exactly. Read from the notifications
        made since then (routing writes them with routed_at, in one transaction): an index range over
        what was notified, not over every mention routed in the lookback."""
        m, lab, n, c = t.mentions.c, t.labels.c, t.notifications.c, t.reply_clock.c
        brand = (select(n.brand).where(n.mention_id == m.id, n.state.not_in(("silenced", "dropped", "attached")))
                 .order_by(case((n.route == KUDOS_ROUTE, 1), else_=0), n.id).limit(1)
                 .correlate(t.mentions).scalar_subquery())
        maybe = or_(lab.needs_reply.is_(True), lab.intent.in_(CLOCK_INTENTS),
                    m.extra["needs_reply_hint"].as_string().is_not(None))
        has_clock = select(c.mention_id).where(c.mention_id == m.id).exists()
        notified = select(n.mention_id).where(n.created_at >= routed_since)
        query = (select(t.mentions, t.labels, brand.label("notified_brand"))
                 .join(t.labels, lab.mention_id == m.id)
                 .where(m.id.in_(notified), m.routed_at >= routed_since, brand.is_not(None), ~has_clock, maybe)
                 .order_by(m.routed_at, m.id, lab.created_at.desc()))  # by id alone, SQLite walks every id
        out: dict[int, tuple[StoredMention, Labels, str]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query.limit(limit * 2)).mappings():
                if row["id"] not in out:
                    out[row["id"]] = (_mention(row), _labels(row), row["notified_brand"])
        return list(out.values())[:limit]

    def create_clocks(self, clocks: Sequence[ClockRow]) -> int:
        """Start these clocks (each once: a mention already on the clock keeps its own)."""
        if not clocks:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(self._insert_ignore(t.reply_clock, ["mention_id"]),
                                [asdict(clock) for clock in clocks]).rowcount

    def reply_clock(self, mention_id: int) -> ClockRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.reply_clock).where(t.reply_clock.c.mention_id == mention_id)).mappings().first()
        return ClockRow(**row) if row else None

    def open_clocks(self, now: datetime | None = None, shortest_repeat: timedelta | None = None) -> list[ClockRow]:
        """Open and snoozed clocks; given `now`, only those that may have something due (a superset of
        what `due_event` picks), so a tick reads what it acts on, not every clock still waiting."""
        c = t.reply_clock.c
        query = select(t.reply_clock).where(c.state.in_(OPEN_STATES))
        if now is not None:
            quiet_since = now - (shortest_repeat or timedelta(0))
            query = query.where(or_(
                and_(c.state == "snoozed", c.snoozed_until <= now),
                and_(c.state == "open", c.escalated_at.is_(None),
                     or_(c.deadline <= now, and_(c.remind_at <= now, c.reminders_sent == 0))),
                and_(c.state == "open", c.escalated_at <= quiet_since,
                     or_(c.last_reminder_at.is_(None), c.last_reminder_at <= quiet_since))))
        with self.engine.connect() as conn:
            return [ClockRow(**r) for r in conn.execute(query.order_by(c.deadline, c.mention_id)).mappings()]

    def answered_clocks(self) -> list[tuple[ClockRow, dict]]:
        """Open or snoozed clocks whose mention (or a cross-post of it) got a recorded team reply, with the
        first such reply."""
        c, r, m = t.reply_clock.c, t.responses.c, t.mentions.c
        # an answer on a cross-post of this clock's mention answers it too
        twins = select(m.id).where(m.crosspost_of == c.mention_id).correlate(t.reply_clock)
        first = (select(func.min(r.id)).where(or_(r.mention_id == c.mention_id, r.mention_id.in_(twins)))
                 .correlate(t.reply_clock).scalar_subquery())
        query = (select(t.reply_clock, r.responder, r.responded_at, r.via, r.url)
                 .select_from(t.reply_clock.join(t.responses, r.id == first))
                 .where(c.state.in_(OPEN_STATES)).order_by(c.mention_id))
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                row = dict(row)
                response = {k: row.pop(k) for k in ("responder", "responded_at", "via", "url")}
                out.append((ClockRow(**row), response))
        return out

    def transition_clock(self, mention_id: int, *, states: Sequence[str], changes: dict,
                         expect: dict | None = None, create: ClockRow | None = None,
                         outbox: Sequence[NewAlert] = (), status: StatusUpdate | None = None,
                         response: dict | None = None, now: datetime) -> bool:
        """One reply-clock decision and everything it queues, in ONE transaction.

        The clock changes only if it is in one of `states` (and its columns equal `expect`); otherwise
        nothing is written and False comes back, so two hands acting at once act once. `create` starts
        the clock first when the mention has none. `status` queues a chat.update of the carrying message,
        built from its newest payload; `response` records a reply for the response statistics.
        """
        c = t.reply_clock.c
        with self.engine.begin() as conn:
            if create is not None:
                conn.execute(self._insert_ignore(t.reply_clock, ["mention_id"]).values(**asdict(create)))
            guard = [c.mention_id == mention_id, c.state.in_(list(states))]
            guard += [c[name].is_(None) if value is None else c[name] == value for name, value in (expect or {}).items()]
            if not conn.execute(update(t.reply_clock).where(*guard).values(**changes)).rowcount:
                return False
            self._queue(conn, outbox, now)
            if status is not None:
                self._queue_status(conn, status, now)
            if response is not None:
                conn.execute(self._insert_ignore(t.responses, ["mention_id", "via", "responder", "responded_at"])
                             .values(mention_id=mention_id, recorded_at=now, **response))
        return True
