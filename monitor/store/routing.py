"""Routing decisions: notifications, cross-posts, backfill summaries, and which message carries a mention."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from typing import Sequence

from sqlalchemy import bindparam, func, select, union, update

from alerts.reply_clock import ClockRow
from monitor.core.labels import Labels
from monitor.core.records import (BACKFILL_ROUTE, KUDOS_ROUTE, Crosspost, NewAlert, NewNotification, StatusUpdate,
                                  StoredMention)
from monitor.store import schema as t
from monitor.store.base import Repository, _AlreadyDone, _labels, _mention


class RoutingRepository(Repository):
    """Routing decisions: notifications, cross-posts, backfill summaries, and which message carries a mention."""

    def backfill_pending(self) -> list[tuple[StoredMention, Labels | None, bool]]:
        """Backfill mentions not yet summarised (nor routed): each with its newest labels (None while
        unlabelled) and whether a team answer is recorded."""
        m, lab, r = t.mentions.c, t.labels.c, t.responses.c
        answered = select(r.mention_id).where(r.mention_id == m.id).exists()
        query = (select(t.mentions, t.labels, answered.label("answered"))
                 .outerjoin(t.labels, lab.mention_id == m.id)
                 .where(m.routed_at.is_(None), m.extra["backfill"].as_string().is_not(None))
                 .order_by(m.id, lab.created_at.desc()))
        out: dict[int, tuple[StoredMention, Labels | None, bool]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                if row["id"] not in out:
                    out[row["id"]] = (_mention(row), _labels(row) if row["model"] else None, bool(row["answered"]))
        return list(out.values())

    def commit_backfill(self, brand: str, mention_ids: Sequence[int],
                        messages: Sequence[tuple[NewAlert, Sequence[int]]], clocks: Sequence[ClockRow],
                        now: datetime) -> bool:
        """A brand's backlog summary in ONE transaction: its messages (the first top-level, the rest in its
        thread), a `backfill` notification carrying each listed mention (so Handled and answers update
        the list), their reply clocks, and routed_at for the whole backlog. False (nothing written) if
        another run summarised these mentions first."""
        try:
            with self.engine.begin() as conn:
                self._write_backfill(conn, brand, mention_ids, messages, clocks, now)
        except _AlreadyDone:
            return False
        return True

    def _write_backfill(self, conn, brand: str, mention_ids: Sequence[int],
                        messages: Sequence[tuple[NewAlert, Sequence[int]]], clocks: Sequence[ClockRow],
                        now: datetime) -> None:
        m = t.mentions.c
        claimed = conn.execute(update(t.mentions).where(m.id.in_(list(mention_ids)), m.routed_at.is_(None))
                               .values(routed_at=now)).rowcount
        if claimed != len(mention_ids):
            raise _AlreadyDone()  # rolls the transaction back
        first: int | None = None
        for alert, carried in messages:
            if first is not None:
                alert = replace(alert, thread_of=first)
            self._queue(conn, [alert], now)
            alert_id = conn.execute(select(t.alerts.c.id).where(t.alerts.c.dedupe_key == alert.dedupe_key)).scalar()
            first = first or alert_id
            for mention_id in carried:
                conn.execute(self._insert_ignore(t.notifications, ["mention_id", "route"]).values(
                    mention_id=mention_id, brand=brand, route=BACKFILL_ROUTE, channel=alert.channel,
                    group_key=f"{BACKFILL_ROUTE}|brand={brand}", urgent=False, state="queued",
                    alert_id=alert_id, created_at=now))
        if clocks:
            conn.execute(self._insert_ignore(t.reply_clock, ["mention_id"]), [asdict(c) for c in clocks])

    def commit_routing(self, mention_ids: Sequence[int], new_alerts: Sequence[NewAlert], now: datetime) -> None:
        with self.engine.begin() as conn:
            self._queue(conn, new_alerts, now)
            conn.execute(update(t.mentions).where(t.mentions.c.id.in_(list(mention_ids))).values(routed_at=now))

    def commit_routed(self, mention_ids: Sequence[int], notifications: Sequence[NewNotification],
                      alerts: Sequence[NewAlert], now: datetime, text_hashes: dict[int, str] | None = None,
                      crossposts: dict[int, int] | None = None, updates: Sequence[StatusUpdate] = ()) -> None:
        """A batch's routing in one transaction: its notifications (with the thread replies and spike folds
        that carry some of them at once), other outbox rows such as kudos, routed_at, each alerted
        mention's text hash, the cross-posts' link to their earlier twin and the updates adding them to
        messages already sent."""
        m = t.mentions.c
        with self.engine.begin() as conn:
            self._queue(conn, alerts, now)
            for note in notifications:
                alert_id = note.carried_by
                if note.alert is not None:
                    self._queue(conn, [note.alert], now)
                    alert_id = conn.execute(select(t.alerts.c.id).where(
                        t.alerts.c.dedupe_key == note.alert.dedupe_key)).scalar()
                conn.execute(self._insert_ignore(t.notifications, ["mention_id", "route"]).values(
                    mention_id=note.mention_id, brand=note.brand, route=note.route, channel=note.channel,
                    group_key=note.group_key, urgent=note.urgent, state=note.state, silence_id=note.silence_id,
                    alert_id=alert_id, created_at=now))
            if text_hashes:
                conn.execute(update(t.mentions).where(m.id == bindparam("mention"))
                             .values(text_hash=bindparam("hash"), crosspost_of=bindparam("twin")),
                             [{"mention": mention_id, "hash": text_hash, "twin": (crossposts or {}).get(mention_id)}
                              for mention_id, text_hash in text_hashes.items()])
            for status in updates:
                self._queue_status(conn, status, now)
            if mention_ids:
                conn.execute(update(t.mentions).where(m.id.in_(list(mention_ids))).values(routed_at=now))

    def crosspost_origins(self, text_hashes: Sequence[str], since: datetime) -> dict[str, list[Crosspost]]:
        """Routed mentions (no cross-posts themselves) with these text hashes since `since` that went to an
        alert route, oldest first, each with those notifications: a routing batch's twins in one query."""
        if not text_hashes:
            return {}
        m, n = t.mentions.c, t.notifications.c
        when = func.coalesce(m.created_at, m.fetched_at)
        query = (select(m.id, m.text_hash, m.source, when.label("at"), n.brand, n.route, n.channel, n.group_key,
                        n.urgent, n.state, n.silence_id, n.alert_id)
                 .select_from(t.mentions.join(t.notifications, n.mention_id == m.id))
                 .where(m.text_hash.in_(sorted(set(text_hashes))), m.crosspost_of.is_(None), when >= since,
                        n.route != KUDOS_ROUTE, n.state != "dropped")
                 .order_by(m.id, n.id))
        found: dict[int, Crosspost] = {}
        out: dict[str, list[Crosspost]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                if r.id not in found:
                    found[r.id] = Crosspost(r.id, [], r.source, r.at)
                    out.setdefault(r.text_hash, []).append(found[r.id])
                found[r.id].notifications.append(NewNotification(
                    r.id, r.brand, r.route, r.channel, r.group_key, r.urgent, r.state, r.silence_id,
                    carried_by=r.alert_id))
        return out

    def item_of(self, mention_id: int) -> int:
        """The mention whose alert item stands for this one: its earlier twin for a cross-post, else itself."""
        m = t.mentions.c
        with self.engine.connect() as conn:
            twin = conn.execute(select(m.crosspost_of).where(m.id == mention_id)).scalar()
        return twin or mention_id

    def thread_carriers(self, mention: StoredMention) -> dict[str, int]:
        """Route path -> the top-level message that carried an earlier mention of the same thread (same
        source and thread, or this one's parent), for a later comment to go into that thread."""
        if not (mention.thread_id or mention.parent_id):
            return {}
        m, n, a = t.mentions.c, t.notifications.c, t.alerts.c
        same = []
        if mention.thread_id:
            same += [m.thread_id == mention.thread_id, m.external_id == mention.thread_id]
        if mention.parent_id:
            same.append(m.external_id == mention.parent_id)
        # One indexed lookup per condition (an OR across columns would scan the source's mentions),
        # then their notifications by mention id; the few rows a thread has are filtered here.
        thread = union(*(select(m.id).where(m.source == mention.source, cond) for cond in same)).subquery()
        query = (select(n.route, n.state, n.mention_id, a.op, func.coalesce(a.thread_of, a.id).label("top"))
                 .select_from(t.notifications.join(t.alerts, a.id == n.alert_id))
                 .where(n.mention_id.in_(select(thread.c.id))).order_by(n.id))
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for route, state, mention_id, op, top in conn.execute(query):
                if state == "queued" and op == "post" and mention_id != mention.id:
                    out.setdefault(route, top)
        return out

    def active_spike_alerts(self) -> dict[str, tuple[int, str]]:
        """Brand -> (alert id, channel) of its active spike's message, for folding negatives into its thread."""
        s, a = t.spikes.c, t.alerts.c
        query = (select(s.brand, s.alert_id, a.channel).join(t.alerts, a.id == s.alert_id)
                 .where(s.state == "active", s.alert_id.is_not(None)).order_by(s.id))
        with self.engine.connect() as conn:
            return {brand: (alert_id, channel) for brand, alert_id, channel in conn.execute(query)}

    def message_of(self, mention_id: int) -> int | None:
        """The outbox id of the message that carried this mention (top-level or thread reply), if any yet:
        its alert, else its kudos message when it is on the reply clock (praise owed an answer)."""
        with self.engine.connect() as conn:
            return self._message_of(conn, mention_id)

    def route_of(self, mention_id: int) -> str | None:
        """The path of the first route this mention took."""
        n = t.notifications.c
        with self.engine.connect() as conn:
            return conn.execute(select(n.route).where(n.mention_id == mention_id, n.route != KUDOS_ROUTE)
                                .order_by(n.id).limit(1)).scalar()

    def notification_counts(self) -> dict[str, int]:
        n = t.notifications.c
        with self.engine.connect() as conn:
            return dict(conn.execute(select(n.state, func.count()).group_by(n.state)).all())
