"""Mentions as polled, cursors, gaps, team answers, usage counters and source health."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import datetime
from typing import Sequence

from sqlalchemy import select, update

from alerts.reply_clock import OPEN_STATES
from monitor.core.logs import REDACTOR, get_logger
from monitor.core.messages import deleted
from monitor.core.records import Gap, Match, NewAlert, Post, StatusUpdate, StoredMention, TeamReply
from monitor.health import SourceHealth
from monitor.store import schema as t
from monitor.store.base import Repository, _mention

log = get_logger(__name__)


class PollRepository(Repository):
    """Mentions as polled, cursors, gaps, team answers, usage counters and source health."""

    def get_cursor(self, source_id: str) -> dict | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.cursors.c.value).where(t.cursors.c.source_id == source_id)).scalar()

    def cursors(self) -> dict[str, tuple[dict, datetime]]:
        """Every source's cursor with the time it was committed."""
        c = t.cursors.c
        with self.engine.connect() as conn:
            return {row.source_id: (row.value, row.updated_at) for row in conn.execute(
                select(c.source_id, c.value, c.updated_at))}

    def commit_poll(self, source_id: str, found: Sequence[tuple[Post, Match]], cursor: dict | None,
                    drops: Counter, now: datetime, gaps: Sequence[Gap] = (),
                    replies: Sequence[TeamReply] = (), deleted: Sequence[tuple[str, str]] = ()) -> list[int]:
        """Store new mentions and advance the cursor atomically; returns ids of mentions new to us.

        `deleted` ((platform, external id) the platform reported deleted, from any connector) marks stored
        mentions `extra.deleted_at` in the same transaction (`_mark_deleted`); ids never stored are ignored.

        `replies` (team answers found before the commit) are recorded in the same transaction, so a
        mention answered before it was stored is never seen unanswered by routing."""
        rows = [{
            "source": post.source, "external_id": post.external_id, "source_id": source_id,
            "brand": match.brand, "matched": match.brands, "url": post.url, "author": post.author,
            "title": post.title, "text": post.text, "created_at": post.created_at, "fetched_at": now,
            "thread_id": post.thread_id, "parent_id": post.parent_id, "reach": post.reach, "extra": post.extra,
        } for post, match in found]
        inserted: list[int] = []
        with self.engine.begin() as conn:
            stmt = self._insert_ignore(t.mentions, ["source", "external_id"]).returning(t.mentions.c.id)
            if rows:
                inserted = list(conn.execute(stmt, rows).scalars().all())
            if cursor is not None:
                conn.execute(self._upsert(t.cursors, ["source_id"],
                                          {"source_id": source_id, "value": cursor, "updated_at": now}))
            for platform, external_id in deleted:
                self._mark_deleted(conn, platform, external_id, now)
            for gap in gaps:
                conn.execute(t.gaps.insert().values(source_id=source_id, window_start=gap.window_start,
                                                    window_end=gap.window_end, estimated_count=gap.estimated_count,
                                                    reason=gap.reason, recorded_at=now))
            for reply in replies:
                mention_id = conn.execute(select(t.mentions.c.id).where(
                    t.mentions.c.source == reply.source, t.mentions.c.external_id == reply.external_id)).scalar()
                if mention_id is not None:
                    conn.execute(self._insert_ignore(t.responses, ["mention_id", "via", "responder", "responded_at"])
                                 .values(mention_id=mention_id, responder=reply.responder,
                                         responded_at=reply.responded_at, url=reply.url, via=reply.source,
                                         recorded_at=now))
            for reason, count in drops.items():
                stmt_drop = self._dialect.insert(t.drop_counts).values(source_id=source_id, reason=reason, count=count)
                conn.execute(stmt_drop.on_conflict_do_update(
                    index_elements=["source_id", "reason"], set_={"count": t.drop_counts.c.count + count}))
        return inserted

    def _mark_deleted(self, conn, platform: str, external_id: str, now: datetime) -> None:
        """A post its platform says was deleted: marked once; what still waits to be alerted is dropped
        (its text is never posted) and its reply clock stops (nobody can answer it; no reminder repeats
        it); a message already carrying it gets an update, queued in this transaction under a key of its
        own, that shows it deleted instead of its text."""
        m, n, c = t.mentions.c, t.notifications.c, t.reply_clock.c
        found = conn.execute(select(m.id, m.extra).where(m.source == platform, m.external_id == external_id)).first()
        if found is None or "deleted_at" in (found.extra or {}):
            return
        conn.execute(t.mentions.update().where(m.id == found.id).values(
            extra={**(found.extra or {}), "deleted_at": now.isoformat()}))
        conn.execute(update(t.notifications).where(n.mention_id == found.id, n.state.in_(("waiting", "silenced")))
                     .values(state="dropped"))
        conn.execute(update(t.reply_clock).where(c.mention_id == found.id, c.state.in_(OPEN_STATES))
                     .values(state="not_relevant", closed_at=now, closed_via="deleted"))
        message_id = self._message_of(conn, found.id)
        if message_id is not None:
            self._queue_status(conn, StatusUpdate(message_id, found.id, f"deleted:{found.id}", deleted(found.id)), now)
        a = t.alerts.c  # reminders and escalations quote the post too: each loses the quote
        for nudge in conn.execute(select(a.id).where(a.mention_id == found.id, a.op == "post",
                                                     a.kind.in_(("reminder", "escalation")))).scalars():
            self._queue_status(conn, StatusUpdate(nudge, found.id, f"deleted:{found.id}:{nudge}", deleted(found.id)),
                               now)
        log.info("%s post %s (mention %s) was deleted by its author%s", platform, external_id[:80], found.id,
                 "; its message will show it deleted" if message_id is not None else "")

    def record_response(self, mention_id: int, responder: str, responded_at: datetime, url: str | None,
                        via: str, now: datetime) -> bool:
        """A team member answered this mention; returns False if it was already known."""
        with self.engine.begin() as conn:
            result = conn.execute(self._insert_ignore(
                t.responses, ["mention_id", "via", "responder", "responded_at"]).values(
                mention_id=mention_id, responder=responder, responded_at=responded_at, url=url, via=via,
                recorded_at=now))
            return bool(result.rowcount)

    def reply_candidates(self, source_id: str, brand: str, since: datetime, limit: int = 5000) -> list[StoredMention]:
        """This source's mentions of `brand` published since `since` that may still wait for a team answer:
        none recorded, and not closed in Slack (classified or not: the check runs before routing). Newest
        first. Read through the (brand, created_at) index: every poll asks."""
        m, r, c = t.mentions.c, t.responses.c, t.reply_clock.c
        answered = select(r.mention_id).where(r.mention_id == m.id).exists()
        closed = select(c.mention_id).where(c.mention_id == m.id, c.state.in_(("handled", "not_relevant"))).exists()
        query = (select(t.mentions).where(m.brand == brand, m.created_at >= since, m.source_id == source_id,
                                          ~answered, ~closed)
                 .order_by(m.created_at.desc(), m.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [_mention(row) for row in conn.execute(query).mappings()]

    def answered_ids(self, mention_ids: Sequence[int]) -> set[int]:
        """Which of these mentions have a team answer recorded."""
        if not mention_ids:
            return set()
        r = t.responses.c
        with self.engine.connect() as conn:
            return set(conn.execute(select(r.mention_id).where(r.mention_id.in_(list(mention_ids)))).scalars())

    def mention_id(self, source: str, external_id: str) -> int | None:
        m = t.mentions.c
        with self.engine.connect() as conn:
            return conn.execute(select(m.id).where(m.source == source, m.external_id == external_id)).scalar()

    def responses(self, mention_id: int) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(t.responses).where(t.responses.c.mention_id == mention_id)
                                                  .order_by(t.responses.c.responded_at)).mappings()]

    def gaps(self, source_id: str | None = None) -> list[dict]:
        query = select(t.gaps).order_by(t.gaps.c.recorded_at)
        if source_id:
            query = query.where(t.gaps.c.source_id == source_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def add_usage(self, key: str, period: str, count: int) -> int:
        """Add to a counter (e.g. X reads this month) and return the new total."""
        with self.engine.begin() as conn:
            conn.execute(self._dialect.insert(t.usage).values(key=key, period=period, count=count)
                         .on_conflict_do_update(index_elements=["key", "period"],
                                                set_={"count": t.usage.c.count + count}))
            return conn.execute(select(t.usage.c.count).where(t.usage.c.key == key, t.usage.c.period == period)).scalar()

    def get_usage(self, key: str, period: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(t.usage.c.count).where(t.usage.c.key == key, t.usage.c.period == period)
                                ).scalar() or 0

    def get_health(self, source_id: str) -> SourceHealth:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.source_health).where(t.source_health.c.source_id == source_id)).mappings().first()
        return SourceHealth(**row) if row else SourceHealth(source_id)

    def save_health(self, health: SourceHealth, alert: NewAlert | None = None) -> None:
        """Save the state, and queue its Slack message in the same transaction when there is one."""
        with self.engine.begin() as conn:
            row = asdict(health)
            row["message"] = REDACTOR.redact(row["message"]) if row["message"] else row["message"]
            conn.execute(self._upsert(t.source_health, ["source_id"], row))
            if alert is not None:
                self._queue(conn, [alert], health.last_attempt_at or health.since)

    def all_health(self) -> list[SourceHealth]:
        with self.engine.connect() as conn:
            return [SourceHealth(**r) for r in conn.execute(select(t.source_health)).mappings()]

    def drop_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(t.drop_counts)):
                out.setdefault(row.source_id, {})[row.reason] = row.count
        return out
