"""Waiting groups, their flushes, and silences."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from sqlalchemy import case, func, or_, select, update

from alerts.grouping import GroupState
from monitor.core.records import NewAlert, WaitingItem
from monitor.store import schema as t


if TYPE_CHECKING:
    from alerts.silences import Silence

from monitor.store.base import Repository, _labels, _mention, _silence


class GroupRepository(Repository):
    """Waiting groups, their flushes, and silences."""

    def waiting_groups(self) -> list[GroupState]:
        n, g = t.notifications.c, t.group_log.c
        query = (select(n.group_key, func.min(n.brand), func.min(n.route), func.min(n.channel), func.min(n.created_at),
                        func.count(), func.max(case((n.urgent, 1), else_=0)), g.last_sent_at, g.last_alert_id)
                 .select_from(t.notifications.outerjoin(t.group_log, g.group_key == n.group_key))
                 .where(n.state == "waiting").group_by(n.group_key, g.last_sent_at, g.last_alert_id)
                 .order_by(func.min(n.id)))
        with self.engine.connect() as conn:
            return [GroupState(key, brand, route, channel, oldest, count, bool(urgent), last, last_alert)
                    for key, brand, route, channel, oldest, count, urgent, last, last_alert in conn.execute(query)]

    def group_items(self, group_key: str) -> list[WaitingItem]:
        """A group's waiting notifications, oldest first, with mention, newest labels, deadline and silence."""
        n, m, lab, c, s = t.notifications.c, t.mentions.c, t.labels.c, t.reply_clock.c, t.silences.c
        query = (select(t.mentions, t.labels, n.id.label("notification_id"), n.brand.label("notified_brand"),
                        c.deadline, c.state.label("clock_state"), s.id.label("silence"),
                        s.reason.label("silence_reason"))
                 .select_from(t.notifications.join(t.mentions, m.id == n.mention_id)
                              .join(t.labels, lab.mention_id == m.id)
                              .outerjoin(t.reply_clock, c.mention_id == m.id)
                              .outerjoin(t.silences, s.id == n.silence_id))
                 .where(n.group_key == group_key, n.state == "waiting").order_by(n.id, lab.created_at.desc()))
        out: dict[int, WaitingItem] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                if row["notification_id"] not in out:
                    out[row["notification_id"]] = WaitingItem(
                        row["notification_id"], row["notified_brand"], _mention(row), _labels(row), row["deadline"],
                        row["silence"], row["silence_reason"], row["clock_state"] in ("handled", "not_relevant"))
            twins: dict[int, list[tuple[str, str | None]]] = {}
            ids = [item.mention.id for item in out.values()]
            for origin, source_id, url in conn.execute(
                    select(m.crosspost_of, m.source_id, m.url).where(m.crosspost_of.in_(ids)).order_by(m.id)):
                twins.setdefault(origin, []).append((source_id, url))
        return [replace(item, also=tuple(twins.get(item.mention.id, ()))) for item in out.values()]

    def commit_flush(self, group_key: str, channel: str, messages: Sequence[tuple[NewAlert, Sequence[int]]],
                     now: datetime, thread_of: int | None = None) -> int | None:
        """A group's messages (the first top-level, the rest in its thread; all in the thread of
        `thread_of` when given, leaving the group log's top-level time alone), its notifications marked
        `queued` with the message that carries each, and the group log, in one transaction."""
        n = t.notifications.c
        first: int | None = None
        with self.engine.begin() as conn:
            for alert, notification_ids in messages:
                if alert.receiver in self.threaded and (thread_of is not None or first is not None):
                    alert = replace(alert, thread_of=thread_of or first)
                self._queue(conn, [alert], now)
                alert_id = conn.execute(select(t.alerts.c.id).where(t.alerts.c.dedupe_key == alert.dedupe_key)).scalar()
                first = first or alert_id
                conn.execute(update(t.notifications).where(n.id.in_(list(notification_ids)), n.state == "waiting")
                             .values(state="queued", alert_id=alert_id))
            if first is not None and thread_of is None:
                conn.execute(self._dialect.insert(t.group_log).values(
                    group_key=group_key, channel=channel, first_sent_at=now, last_sent_at=now, last_alert_id=first)
                    .on_conflict_do_update(index_elements=["group_key"],
                                           set_={"last_sent_at": now, "last_alert_id": first, "channel": channel}))
        return first

    def release_silenced(self, now: datetime) -> tuple[int, int]:
        """Notifications whose silence ended or was expired: back to `waiting`, or `dropped` when their
        mention was closed meanwhile. Returns (released, dropped)."""
        n, s, c = t.notifications.c, t.silences.c, t.reply_clock.c
        over = select(s.id).where(or_(s.expired_at.is_not(None), s.ends_at <= now))
        closed = select(c.mention_id).where(c.mention_id == n.mention_id,
                                            c.state.in_(("handled", "not_relevant"))).exists()
        with self.engine.begin() as conn:
            dropped = conn.execute(update(t.notifications).where(n.state == "silenced", n.silence_id.in_(over), closed)
                                   .values(state="dropped")).rowcount
            released = conn.execute(update(t.notifications).where(n.state == "silenced", n.silence_id.in_(over))
                                    .values(state="waiting")).rowcount
        return released, dropped

    def drop_notifications(self, notification_ids: Sequence[int]) -> None:
        if notification_ids:
            n = t.notifications.c
            with self.engine.begin() as conn:
                conn.execute(update(t.notifications).where(n.id.in_(list(notification_ids)), n.state == "waiting")
                             .values(state="dropped"))

    def hold(self, notification_ids: Sequence[int], silence_id: int) -> None:
        """Waiting notifications that a silence added since they were routed now holds."""
        n = t.notifications.c
        with self.engine.begin() as conn:
            conn.execute(update(t.notifications).where(n.id.in_(list(notification_ids)), n.state == "waiting")
                         .values(state="silenced", silence_id=silence_id))

    def add_silence(self, matchers: dict[str, str], reason: str | None, created_by: str | None,
                    starts_at: datetime, ends_at: datetime, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(t.silences.insert().values(
                matchers=matchers, reason=reason, created_by=created_by, starts_at=starts_at, ends_at=ends_at,
                created_at=now).returning(t.silences.c.id)).scalar()

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End a silence now; False if there is no such silence or it already ended."""
        s = t.silences.c
        with self.engine.begin() as conn:
            return bool(conn.execute(update(t.silences).where(s.id == silence_id, s.expired_at.is_(None),
                                                              s.ends_at > now).values(expired_at=now)).rowcount)

    def silences(self, ended_since: datetime | None = None) -> list[Silence]:
        """Silences still to end, plus (with `ended_since`) those that ended after it, each with how many
        notifications it holds now or held."""
        s, n = t.silences.c, t.notifications.c
        held = select(func.count()).where(n.silence_id == s.id).correlate(t.silences).scalar_subquery()
        query = select(t.silences, held.label("held")).order_by(s.id)
        if ended_since is not None:
            query = query.where(func.coalesce(s.expired_at, s.ends_at) >= ended_since)
        with self.engine.connect() as conn:
            return [_silence(row) for row in conn.execute(query).mappings()]

    def active_silences(self, now: datetime) -> list[Silence]:
        """The silences holding alerts at `now`, for routing and flushing (read every process run, so
        without `silences`' count of what each held)."""
        s = t.silences.c
        query = (select(t.silences).where(s.expired_at.is_(None), s.starts_at <= now, s.ends_at > now)
                 .order_by(s.id))
        with self.engine.connect() as conn:
            return [_silence(row) for row in conn.execute(query).mappings()]
