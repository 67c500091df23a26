"""All reads and writes of mentionwatch's state, each operation one transaction.

The guarantees live here: mentions are inserted idempotently on (source, external_id) in the same
transaction that advances the source's cursor; alerts are written to the outbox in the same
transaction that marks their mention routed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Iterator, Sequence

from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from classifiers.base import Labels
from monitor import schema as t
from monitor.health import SourceHealth
from monitor.models import Gap, Match, Post


@dataclass(frozen=True)
class StoredMention:
    id: int
    source: str
    external_id: str
    source_id: str
    brand: str
    matched: dict
    url: str | None
    author: str | None
    title: str | None
    text: str
    created_at: datetime | None
    fetched_at: datetime
    reach: int | None
    extra: dict


@dataclass(frozen=True)
class AlertRow:
    id: int
    dedupe_key: str
    kind: str
    mention_id: int | None
    channel: str
    payload: dict
    state: str
    attempts: int
    created_at: datetime
    sending_at: datetime | None
    op: str = "post"
    thread_of: int | None = None
    updates: int | None = None


@dataclass(frozen=True)
class NewAlert:
    """An outbox row: `post` a message (into the thread of alert `thread_of` when set), `update` the
    message that alert `updates` posted, or `upload` a file (payload carries it)."""

    dedupe_key: str
    kind: str
    mention_id: int | None
    brand: str | None
    channel: str
    payload: dict
    op: str = "post"
    thread_of: int | None = None
    updates: int | None = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", t.sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        t.migrate(self.engine)
        self._dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite

    def close(self) -> None:
        self.engine.dispose()

    def _insert_ignore(self, table, index_elements: Sequence[str]):
        return self._dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))

    def _upsert(self, table, keys: Sequence[str], values: dict):
        stmt = self._dialect.insert(table).values(**values)
        changes = {k: v for k, v in values.items() if k not in keys}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=changes)

    # --- polling -------------------------------------------------------------------------------

    def get_cursor(self, source_id: str) -> dict | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.cursors.c.value).where(t.cursors.c.source_id == source_id)).scalar()

    def commit_poll(self, source_id: str, found: Sequence[tuple[Post, Match]], cursor: dict | None,
                    drops: Counter, now: datetime, gaps: Sequence[Gap] = ()) -> list[int]:
        """Store new mentions and advance the cursor atomically; returns ids of mentions new to us."""
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
            for gap in gaps:
                conn.execute(t.gaps.insert().values(source_id=source_id, window_start=gap.window_start,
                                                    window_end=gap.window_end, estimated_count=gap.estimated_count,
                                                    reason=gap.reason, recorded_at=now))
            for reason, count in drops.items():
                stmt_drop = self._dialect.insert(t.drop_counts).values(source_id=source_id, reason=reason, count=count)
                conn.execute(stmt_drop.on_conflict_do_update(
                    index_elements=["source_id", "reason"], set_={"count": t.drop_counts.c.count + count}))
        return inserted

    # --- what connectors learn besides mentions ------------------------------------------------

    def record_response(self, mention_id: int, responder: str, responded_at: datetime, url: str | None,
                        via: str, now: datetime) -> bool:
        """A team member answered this mention; returns False if it was already known."""
        with self.engine.begin() as conn:
            result = conn.execute(self._insert_ignore(
                t.responses, ["mention_id", "via", "responder", "responded_at"]).values(
                mention_id=mention_id, responder=responder, responded_at=responded_at, url=url, via=via,
                recorded_at=now))
            return bool(result.rowcount)

    def awaiting_reply(self, source: str, since: datetime, limit: int) -> list[StoredMention]:
        """Mentions from this platform that need a reply and have none recorded yet, newest first."""
        m, lab, r = t.mentions.c, t.labels.c, t.responses.c
        answered = select(r.mention_id).where(r.mention_id == m.id).exists()
        needs = select(lab.mention_id).where(lab.mention_id == m.id, lab.needs_reply.is_(True)).exists()
        newest = func.coalesce(m.created_at, m.fetched_at)
        query = (select(t.mentions).where(m.source == source, m.fetched_at >= since, needs, ~answered)
                 .order_by(newest.desc(), m.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [_mention(row) for row in conn.execute(query).mappings()]

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

    # --- source health -------------------------------------------------------------------------

    def get_health(self, source_id: str) -> SourceHealth:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.source_health).where(t.source_health.c.source_id == source_id)).mappings().first()
        return SourceHealth(**row) if row else SourceHealth(source_id)

    def save_health(self, health: SourceHealth, alert: NewAlert | None = None) -> None:
        """Save the state, and queue its Slack message in the same transaction when there is one."""
        with self.engine.begin() as conn:
            conn.execute(self._upsert(t.source_health, ["source_id"], asdict(health)))
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

    # --- classification ------------------------------------------------------------------------

    def unclassified(self, limit: int) -> list[tuple[int, str]]:
        m = t.mentions.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(m.id, m.title, m.text).where(m.classified_at.is_(None))
                                .order_by(m.id).limit(limit)).all()
        return [(r.id, "\n".join(p for p in (r.title, r.text) if p)) for r in rows]

    def save_labels(self, labelled: Sequence[tuple[int, Labels]], now: datetime) -> None:
        rows = [{"mention_id": mention_id, "model": lab.model, "sentiment": lab.sentiment,
                 "sentiment_scores": lab.sentiment_scores, "intent": lab.intent, "intent_scores": lab.intent_scores,
                 "needs_reply": lab.needs_reply, "needs_reply_score": lab.needs_reply_score,
                 "language": lab.language, "low_confidence": lab.low_confidence, "created_at": now}
                for mention_id, lab in labelled]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(t.labels, ["mention_id", "model"]), rows)
            ids = [mention_id for mention_id, _ in labelled]
            conn.execute(update(t.mentions).where(t.mentions.c.id.in_(ids)).values(classified_at=now))

    # --- routing -------------------------------------------------------------------------------

    def unrouted(self, limit: int) -> list[tuple[StoredMention, Labels]]:
        m, lab = t.mentions.c, t.labels.c
        query = (select(t.mentions, t.labels).join(t.labels, lab.mention_id == m.id)
                 .where(m.classified_at.is_not(None), m.routed_at.is_(None)).order_by(m.id, lab.created_at.desc()))
        out: dict[int, tuple[StoredMention, Labels]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query.limit(limit * 2)).mappings():
                if row["id"] not in out:
                    out[row["id"]] = (_mention(row), _labels(row))
        return list(out.values())[:limit]

    def commit_routing(self, mention_ids: Sequence[int], new_alerts: Sequence[NewAlert], now: datetime) -> None:
        with self.engine.begin() as conn:
            self._queue(conn, new_alerts, now)
            conn.execute(update(t.mentions).where(t.mentions.c.id.in_(list(mention_ids))).values(routed_at=now))

    def _queue(self, conn, alerts: Sequence[NewAlert], now: datetime) -> None:
        if alerts:
            conn.execute(self._insert_ignore(t.alerts, ["dedupe_key"]),
                         [{**asdict(a), "state": "pending", "attempts": 0, "created_at": now} for a in alerts])

    # --- the Slack outbox ----------------------------------------------------------------------

    def outbox(self, limit: int) -> list[AlertRow]:
        a = t.alerts.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(a.id, a.dedupe_key, a.kind, a.mention_id, a.channel, a.payload, a.state,
                                       a.attempts, a.created_at, a.sending_at, a.op, a.thread_of, a.updates)
                                .where(a.state.in_(("pending", "sending"))).order_by(a.id).limit(limit)).all()
        return [AlertRow(**r._mapping) for r in rows]

    def claim(self, alert_ids: Sequence[int], now: datetime) -> None:
        """Mark a batch `sending` in one commit, before any of it is posted."""
        with self.engine.begin() as conn:
            conn.execute(update(t.alerts).where(t.alerts.c.id.in_(list(alert_ids)))
                         .values(state="sending", sending_at=now, attempts=t.alerts.c.attempts + 1))

    def settle(self, sent: Sequence[tuple[int, str, str]], unsent: Sequence[tuple[int, str | None]],
               now: datetime) -> None:
        """Record a batch's outcome in one commit: (id, channel id, ts) sent; (id, error) known not sent."""
        with self.engine.begin() as conn:
            for alert_id, channel_id, ts in sent:
                conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(
                    state="sent", sent_at=now, slack_channel_id=channel_id, slack_ts=ts, last_error=None))
            for alert_id, error in unsent:
                conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(state="pending", last_error=error))

    def mark_failed(self, alert_id: int, error: str) -> None:
        self._set_alert(alert_id, state="failed", last_error=error)

    def _set_alert(self, alert_id: int, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(**values))

    def channel_id(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.slack_channels.c.channel_id).where(t.slack_channels.c.name == name)).scalar()

    def remember_channel(self, name: str, channel_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._upsert(t.slack_channels, ["name"], {"name": name, "channel_id": channel_id}))

    def alert_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(t.alerts.c.state, func.count()).group_by(t.alerts.c.state)).all())

    # --- export --------------------------------------------------------------------------------

    def export_rows(self, since: datetime | None) -> Iterator[dict]:
        """Mentions with their newest labels and alert state, oldest first, streamed."""
        m, lab, a = t.mentions.c, t.labels.c, t.alerts.c
        alert_state = (select(func.max(a.state)).where(a.mention_id == m.id).correlate(t.mentions)
                       .scalar_subquery())
        newest = (select(func.max(lab.created_at)).where(lab.mention_id == m.id).correlate(t.mentions)
                  .scalar_subquery())
        query = (select(m.id, m.brand, m.source, m.source_id, m.external_id, m.url, m.author, m.title, m.text,
                        m.created_at, m.fetched_at, lab.sentiment, lab.intent, lab.needs_reply, lab.model,
                        alert_state.label("alert_state"))
                 .select_from(t.mentions.outerjoin(t.labels, (lab.mention_id == m.id) & (lab.created_at == newest)))
                 .order_by(m.id))
        if since is not None:
            query = query.where(m.fetched_at >= since)
        with self.engine.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=1000).execute(query).mappings():
                yield dict(row)


def _mention(row) -> StoredMention:
    return StoredMention(**{f: row[f] for f in StoredMention.__dataclass_fields__})


def _labels(row) -> Labels:
    return Labels(sentiment=row["sentiment"], sentiment_scores=row["sentiment_scores"], intent=row["intent"],
                  intent_scores=row["intent_scores"], needs_reply=row["needs_reply"],
                  needs_reply_score=row["needs_reply_score"], model=row["model"], language=row["language"],
                  low_confidence=row["low_confidence"])
