"""Pruning: what each retention kind may delete, counted (`prune --dry-run`) or deleted in small batches.

Each batch is one short transaction (select up to `batch` ids, delete them), so the daemon's polls and
deliveries wait at most one batch for the write lock. What is still in use is never a candidate: unsent
or unsettled outbox rows and the messages they thread under, update or link to; a group's last message;
an active spike's message; mentions (and their messages) on an open reply clock, waiting or silenced in a
group, not yet labelled or routed, or carrying a person's label correction; cursors, source health, drop
counts, usage counters, digests and the daily rollup are not pruned at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Select, delete, exists, func, or_, select, union, update

from alerts.reply_clock import OPEN_STATES
from monitor.config.retention import Cutoffs
from monitor.store import schema as t
from monitor.store.base import Repository

m, a, n, c = t.mentions.c, t.alerts.c, t.notifications.c, t.reply_clock.c
UNSETTLED = ("pending", "sending")
SETTLED = ("sent", "failed")
# Rows whose mention_id points at a pruned mention go with it (alerts keep their row, mention_id NULL).
MENTION_CHILDREN = (t.labels, t.responses, t.notifications, t.reply_clock, t.label_feedback)


@dataclass(frozen=True)
class Kind:
    """One thing retention prunes: its table, which rows are candidates, and the cutoff that applies."""

    name: str
    table: object
    candidates: Callable[[Cutoffs], Select]  # ids of prunable rows, oldest first


def _in_use_messages() -> Select:
    """Outbox ids something still needs: unsettled rows and what they refer to, groups' last messages,
    active spikes, and the messages carrying a mention on an open reply clock."""
    pending = t.alerts.alias("pending")
    p = pending.c
    open_clock = select(c.mention_id).where(c.state.in_(OPEN_STATES))
    link_of = p.payload["link_of"].as_integer()
    return union(  # no NULL among them: `NOT IN` a set holding NULL is never true
        select(a.id).where(a.state.in_(UNSETTLED)),
        select(p.thread_of).where(p.state.in_(UNSETTLED), p.thread_of.is_not(None)),
        select(p.updates).where(p.state.in_(UNSETTLED), p.updates.is_not(None)),
        select(link_of).where(p.state.in_(UNSETTLED), link_of.is_not(None)),
        select(t.group_log.c.last_alert_id).where(t.group_log.c.last_alert_id.is_not(None)),
        select(t.spikes.c.alert_id).where(t.spikes.c.state == "active", t.spikes.c.alert_id.is_not(None)),
        select(n.alert_id).where(n.mention_id.in_(open_clock), n.alert_id.is_not(None)),
        select(a.id).where(a.mention_id.in_(open_clock)),
    )


def _messages(uploads: bool, cutoff: Callable[[Cutoffs], object]) -> Callable[[Cutoffs], Select]:
    def candidates(cut: Cutoffs) -> Select:
        kind = a.op == "upload" if uploads else a.op != "upload"
        settled_before = or_(a.sent_at < cutoff(cut), (a.state == "failed") & (a.created_at < cutoff(cut)))
        return (select(a.id).where(a.state.in_(SETTLED), settled_before, kind, a.id.not_in(_in_use_messages()))
                .order_by(a.id))
    return candidates


def _mentions(cut: Cutoffs) -> Select:
    in_use = or_(
        exists().where(c.mention_id == m.id, c.state.in_(OPEN_STATES)),
        exists().where(n.mention_id == m.id, n.state.in_(("waiting", "silenced"))),
        exists().where(n.mention_id == m.id, n.alert_id.in_(select(a.id).where(a.state.in_(UNSETTLED)))),
        exists().where(a.mention_id == m.id, a.state.in_(UNSETTLED)),
        exists().where(t.label_feedback.c.mention_id == m.id),  # training examples are kept with their mention
    )
    return (select(m.id).where(m.fetched_at < cut.mentions, m.classified_at.is_not(None), m.routed_at.is_not(None),
                               ~in_use).order_by(m.fetched_at))


def _by_age(table, column, cutoff: Callable[[Cutoffs], object], *where) -> Callable[[Cutoffs], Select]:
    def candidates(cut: Cutoffs) -> Select:
        return select(_key(table)).where(column < cutoff(cut), *where).order_by(column)
    return candidates


def _key(table):
    """The one-column primary key pruning deletes by."""
    return list(table.primary_key.columns)[0]


s = t.silences.c
KINDS = (
    Kind("outbox", t.alerts, _messages(False, lambda cut: cut.outbox)),
    Kind("digest_images", t.alerts, _messages(True, lambda cut: cut.digest_images)),
    Kind("group_log", t.group_log, _by_age(t.group_log, t.group_log.c.last_sent_at, lambda cut: cut.outbox,
                                           ~exists().where(n.group_key == t.group_log.c.group_key,
                                                           n.state.in_(("waiting", "silenced"))))),
    Kind("mentions", t.mentions, _mentions),
    Kind("slack_events", t.slack_events, _by_age(t.slack_events, t.slack_events.c.received_at, lambda cut: cut.slack_events)),
    Kind("gaps", t.gaps, _by_age(t.gaps, t.gaps.c.recorded_at, lambda cut: cut.history)),
    Kind("silences", t.silences, _by_age(t.silences, func.coalesce(s.expired_at, s.ends_at), lambda cut: cut.history,
                                         ~exists().where(n.silence_id == s.id, n.state == "silenced"))),
    Kind("spikes", t.spikes, _by_age(t.spikes, t.spikes.c.ended_at, lambda cut: cut.history, t.spikes.c.state == "ended")),
)


class RetentionRepository(Repository):
    """Counting and deleting what the retention policy lets go."""

    def prunable(self, cutoffs: Cutoffs) -> dict[str, int]:
        """Per kind, how many rows pruning would delete now (`prune --dry-run`)."""
        with self.engine.connect() as conn:
            return {kind.name: conn.execute(select(func.count()).select_from(kind.candidates(cutoffs).subquery()))
                    .scalar_one() for kind in KINDS}

    def prune_batch(self, kind: Kind, cutoffs: Cutoffs, batch: int) -> int:
        """Delete up to `batch` of the kind's oldest prunable rows in one transaction; returns how many."""
        key = _key(kind.table)
        with self.engine.begin() as conn:
            ids = list(conn.execute(kind.candidates(cutoffs).limit(batch)).scalars())
            if not ids:
                return 0
            if kind.table is t.mentions:
                for child in MENTION_CHILDREN:
                    conn.execute(delete(child).where(child.c.mention_id.in_(ids)))
                conn.execute(update(t.alerts).where(a.mention_id.in_(ids)).values(mention_id=None))
            elif kind.table is t.alerts:
                conn.execute(update(t.notifications).where(n.alert_id.in_(ids)).values(alert_id=None))
            return conn.execute(delete(kind.table).where(key.in_(ids))).rowcount
