"""The outbox the sender claims and settles, channel ids and Slack event keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import and_, func, or_, select, update

from monitor.core.logs import get_logger
from monitor.core.records import AlertRow
from monitor.store import schema as t
from monitor.store.base import Repository

log = get_logger(__name__)


class OutboxRepository(Repository):
    """The outbox the sender claims and settles, channel ids and Slack event keys."""

    def outbox(self, limit: int, receivers: Sequence[str] = ("slack",)) -> list[AlertRow]:
        """Unsent rows of these receivers in order (Slack's by default); no receiver waits on another."""
        a = t.alerts.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(a.id, a.dedupe_key, a.kind, a.mention_id, a.channel, a.payload, a.state,
                                       a.attempts, a.created_at, a.sending_at, a.op, a.thread_of, a.updates,
                                       a.receiver, a.format, a.folded)
                                .where(a.state.in_(("pending", "sending")), a.receiver.in_(list(receivers)))
                                .order_by(a.id).limit(limit)).all()
        return [AlertRow(**r._mapping) for r in rows]

    def fail_unrouted(self, receivers: Sequence[str]) -> int:
        """Unsent rows of a receiver that is no longer configured: failed, saying so. Returns how many."""
        a = t.alerts.c
        failed = 0
        with self.engine.begin() as conn:
            gone = conn.execute(select(a.receiver).distinct().where(a.state.in_(("pending", "sending")),
                                                                    a.receiver.not_in(list(receivers)))).scalars().all()
            for name in gone:
                failed += conn.execute(update(t.alerts).where(a.state.in_(("pending", "sending")), a.receiver == name)
                                       .values(state="failed", last_error=f"receiver {name!r} is not configured")
                                       ).rowcount
                log.error("alerts to receiver %s failed: it is not configured (will not retry)", name)
        return failed

    def fold_bursts(self, per_minute: int, now: datetime) -> int:
        """Keep each channel within `per_minute` top-level messages: a pending top-level post beyond it
        becomes a reply in the thread of the channel's latest top-level message (its own replies follow
        it there), marked `folded` so the receiver adds why when it renders. One transaction, before
        anything is claimed, so what is sent and what reconciliation looks for agree. Returns how many
        were folded."""
        a = t.alerts.c
        top = and_(a.op == "post", a.thread_of.is_(None), a.receiver == "slack")
        folded = 0
        with self.engine.begin() as conn:
            pending = conn.execute(select(a.id, a.channel).where(a.state == "pending", top)
                                   .order_by(a.id)).all()
            by_channel: dict[str, list] = {}
            for row in pending:
                by_channel.setdefault(row.channel, []).append(row)
            for channel, rows in by_channel.items():
                recent = conn.execute(select(a.id).where(a.channel == channel, top, or_(
                    a.state == "sending", and_(a.state == "sent", a.sent_at >= now - timedelta(minutes=1))))
                    .order_by(a.id)).scalars().all()
                budget, carrier = per_minute - len(recent), (recent[-1] if recent else None)
                for row in rows:
                    if budget > 0 or carrier is None:
                        budget, carrier = budget - 1, row.id
                        continue
                    conn.execute(update(t.alerts).where(a.id == row.id, a.state == "pending")
                                 .values(thread_of=carrier, folded=per_minute))
                    conn.execute(update(t.alerts).where(a.thread_of == row.id, a.state == "pending")
                                 .values(thread_of=carrier))
                    folded += 1
        return folded

    def message_views(self, alert_ids: Sequence[int]) -> dict[int, tuple[dict, int | None, list[tuple[int, dict]]]]:
        """For each neutral message: its stored message, its fold, and the changes queued for it as
        (update row id, change) in order, which the receiver renders an update from."""
        a = t.alerts.c
        if not alert_ids:
            return {}
        with self.engine.connect() as conn:
            messages = conn.execute(select(a.id, a.payload, a.folded).where(a.id.in_(list(alert_ids)),
                                                                            a.format == "neutral")).all()
            changes = conn.execute(select(a.id, a.updates, a.payload).where(
                a.op == "update", a.format == "neutral", a.updates.in_([m.id for m in messages])).order_by(a.id)).all()
        out = {m.id: (m.payload, m.folded, []) for m in messages}
        for row in changes:
            out[row.updates][2].append((row.id, row.payload["change"]))
        return out

    def claim(self, rows: Sequence[AlertRow], now: datetime) -> set[int]:
        """Mark a batch `sending` in one commit, before any of it is posted; returns the ids this call owns.

        Each row is claimed only if it is still as `outbox` read it (same state, same `sending_at`): a row
        another process claimed meanwhile is left to it, so two senders on one database never both post it."""
        a = t.alerts.c
        owned = set()
        with self.engine.begin() as conn:
            for row in rows:
                seen = a.sending_at.is_(None) if row.sending_at is None else a.sending_at == row.sending_at
                claimed = conn.execute(update(t.alerts).where(a.id == row.id, a.state == row.state, seen)
                                       .values(state="sending", sending_at=now, attempts=a.attempts + 1))
                if claimed.rowcount == 1:
                    owned.add(row.id)
        return owned

    def settle(self, sent: Sequence[tuple[int, str | None, str | None]], unsent: Sequence[tuple[int, str | None]],
               now: datetime, claimed_at: datetime | None = None) -> None:
        """Record a batch's outcome in one commit: (id, channel id, ts) sent; (id, error) known not sent.

        A row known not sent goes back to `pending` only while it is still the claim made at `claimed_at`,
        and nothing overwrites a row already `sent`: a node that stalled past its lease and lost the lead
        must not undo what the new leader has sent since (which would send it again)."""
        a = t.alerts.c
        with self.engine.begin() as conn:
            for alert_id, channel_id, ts in sent:
                conn.execute(update(t.alerts).where(a.id == alert_id, a.state != "sent").values(
                    state="sent", sent_at=now, slack_channel_id=channel_id, slack_ts=ts, last_error=None))
            for alert_id, error in unsent:
                conn.execute(update(t.alerts).where(a.id == alert_id, a.state == "sending", a.sending_at == claimed_at)
                             .values(state="pending", last_error=error))

    def settle_one(self, alert_id: int, sent: bool, error: str | None, now: datetime, claimed_at: datetime) -> None:
        """One row's outcome (a receiver without batches): sent, or known not sent and pending again (see `settle`)."""
        if sent:
            self.settle([(alert_id, None, None)], [], now)
        else:
            self.settle([], [(alert_id, error)], now, claimed_at)

    def mark_failed(self, alert_id: int, error: str) -> None:
        a = t.alerts.c
        with self.engine.begin() as conn:
            conn.execute(update(t.alerts).where(a.id == alert_id, a.state != "sent").values(state="failed",
                                                                                          last_error=error))

    def channel_id(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.slack_channels.c.channel_id).where(t.slack_channels.c.name == name)).scalar()

    def remember_channel(self, name: str, channel_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._upsert(t.slack_channels, ["name"], {"name": name, "channel_id": channel_id}))

    def alert_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(t.alerts.c.state, func.count()).group_by(t.alerts.c.state)).all())

    def slack_targets(self, alert_ids: Sequence[int]) -> dict[int, tuple[str, str | None, str | None]]:
        """State, channel id and ts of the messages that thread replies and updates refer to."""
        a = t.alerts.c
        if not alert_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(a.id, a.state, a.slack_channel_id, a.slack_ts)
                                .where(a.id.in_(list(alert_ids)))).all()
        return {r.id: (r.state, r.slack_channel_id, r.slack_ts) for r in rows}

    def first_time(self, key: str, now: datetime) -> bool:
        """Record a Socket Mode event or action; False if it was seen before (Slack redelivers)."""
        with self.engine.begin() as conn:
            result = conn.execute(self._insert_ignore(t.slack_events, ["key"]).values(key=key[:200], received_at=now))
            return bool(result.rowcount)

    def alert_at(self, channel_id: str, ts: str) -> int | None:
        """The message we posted at this channel and ts, if it is one of ours."""
        a = t.alerts.c
        with self.engine.connect() as conn:
            return conn.execute(select(a.id).where(a.slack_channel_id == channel_id, a.slack_ts == ts,
                                                   a.op == "post").order_by(a.id).limit(1)).scalar()

    def mentions_of_alert(self, alert_id: int) -> list[int]:
        """The mentions a message carries: those grouped into it, or the one it was posted for."""
        n, a = t.notifications.c, t.alerts.c
        with self.engine.connect() as conn:
            grouped = conn.execute(select(n.mention_id).where(n.alert_id == alert_id).order_by(n.id)).scalars().all()
            own = conn.execute(select(a.mention_id).where(a.id == alert_id)).scalar()
        return list(dict.fromkeys([*grouped, *([own] if own is not None else [])]))

    def thread_root(self, alert_id: int) -> tuple[int, str] | None:
        """The top-level message (id, channel) whose thread the message `alert_id` is in, or is."""
        a = t.alerts.c
        with self.engine.connect() as conn:
            row = conn.execute(select(func.coalesce(a.thread_of, a.id), a.channel).where(a.id == alert_id)).first()
        return (row[0], row[1]) if row else None
