"""Labels of mentions, label feedback and the export."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterator, Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection

from monitor.core.labels import Labels
from monitor.core.records import StatusUpdate, StoredMention
from monitor.store import schema as t
from monitor.store.base import Repository, _labels, _mention
from monitor.store.rollup import mark_labelled, roll_up


class MentionRepository(Repository):
    """Labels of mentions, label feedback and the export."""

    def unclassified(self, limit: int) -> list[tuple[int, str]]:
        with self.engine.connect() as conn:
            return _unlabelled(conn, limit, lock=False)

    def label_pending(self, limit: int, classify: Callable[[list[tuple[int, str]]], list[Labels]],
                      now: Callable[[], datetime]) -> int:
        """Label up to `limit` unlabelled mentions, oldest first, with `classify`; returns how many.

        On PostgreSQL the rows stay locked (FOR UPDATE SKIP LOCKED) from the read to the commit of their
        labels: nodes labelling side by side take disjoint batches, and a node that dies mid-batch frees its
        rows with its connection. SQLite has one node; it reads, labels, then writes, so no write lock is
        held while the model runs."""
        if self.engine.dialect.name != "postgresql":
            pending = self.unclassified(limit)
            if pending:
                self.save_labels(list(zip((mention_id for mention_id, _ in pending), classify(pending))), now())
            return len(pending)
        with self.engine.begin() as conn:
            pending = _unlabelled(conn, limit, lock=True)
            if pending:
                self._write_labels(conn, list(zip((mention_id for mention_id, _ in pending), classify(pending))),
                                   now())
        return len(pending)

    def save_labels(self, labelled: Sequence[tuple[int, Labels]], now: datetime) -> None:
        """Labels, classified_at and the daily rollup in one transaction (monitor.store.rollup)."""
        if labelled:
            with self.engine.begin() as conn:
                self._write_labels(conn, labelled, now)

    def _write_labels(self, conn: Connection, labelled: Sequence[tuple[int, Labels]], now: datetime) -> None:
        rows = [{"mention_id": mention_id, "model": lab.model, "sentiment": lab.sentiment,
                 "sentiment_scores": lab.sentiment_scores, "intent": lab.intent, "intent_scores": lab.intent_scores,
                 "needs_reply": lab.needs_reply, "needs_reply_score": lab.needs_reply_score,
                 "language": lab.language, "low_confidence": lab.low_confidence, "created_at": now}
                for mention_id, lab in labelled]
        ids = list(dict.fromkeys(mention_id for mention_id, _ in labelled))
        fresh, before = mark_labelled(conn, ids, now)
        conn.execute(self._insert_ignore(t.labels, ["mention_id", "model"]), rows)
        roll_up(conn, self._dialect, ids, fresh, before)

    def unrouted(self, limit: int) -> list[tuple[StoredMention, Labels]]:
        m, lab = t.mentions.c, t.labels.c
        query = (select(t.mentions, t.labels).join(t.labels, lab.mention_id == m.id)
                 .where(m.classified_at.is_not(None), m.routed_at.is_(None),
                        m.extra["backfill"].as_string().is_(None))  # backlog: summarised per brand instead
                 .order_by(m.id, lab.created_at.desc()))
        out: dict[int, tuple[StoredMention, Labels]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query.limit(limit * 2)).mappings():
                if row["id"] not in out:
                    out[row["id"]] = (_mention(row), _labels(row))
        return list(out.values())[:limit]

    def export_rows(self, since: datetime | None) -> Iterator[dict]:
        """Mentions with their newest labels and alert state, oldest first, streamed."""
        m, lab, a = t.mentions.c, t.labels.c, t.alerts.c
        n = t.notifications.c
        carried = select(n.id).where(n.alert_id == a.id, n.mention_id == m.id).correlate(t.alerts, t.mentions)
        alert_state = (select(func.max(a.state)).where(or_(a.mention_id == m.id, carried.exists()))
                       .correlate(t.mentions).scalar_subquery())  # its own alert, or the group message carrying it
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

    def mention_with_labels(self, mention_id: int) -> tuple[StoredMention, Labels | None] | None:
        """A mention and its newest labels (None before it is classified)."""
        m, lab = t.mentions.c, t.labels.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.mentions).where(m.id == mention_id)).mappings().first()
            if row is None:
                return None
            labelled = conn.execute(select(t.labels).where(lab.mention_id == mention_id)
                                    .order_by(lab.created_at.desc()).limit(1)).mappings().first()
        return _mention(row), (_labels(labelled) if labelled else None)

    def record_label_feedback(self, mention_id: int, text: str, sentiment: str | None, intent: str | None,
                              model: str | None, by: str, now: datetime, status: StatusUpdate | None) -> bool:
        """Store a person's correction (one per person and mention; a new one replaces theirs) and queue
        the message update with it; False if they already said exactly this."""
        f = t.label_feedback.c
        with self.engine.begin() as conn:
            old = conn.execute(select(f.sentiment, f.intent).where(f.mention_id == mention_id,
                                                                   f.labelled_by == by)).first()
            if old is not None and (old.sentiment, old.intent) == (sentiment, intent):
                return False
            conn.execute(self._upsert(t.label_feedback, ["mention_id", "labelled_by"], {
                "mention_id": mention_id, "text": text, "sentiment": sentiment, "intent": intent, "model": model,
                "labelled_by": by, "created_at": now}))
            if status is not None:
                self._queue_status(conn, status, now)
        return True

    def label_feedback(self) -> Iterator[dict]:
        """Every correction, oldest first: the training examples `mentionwatch feedback export` writes."""
        with self.engine.connect() as conn:
            for row in conn.execute(select(t.label_feedback).order_by(t.label_feedback.c.id)).mappings():
                yield dict(row)


def _unlabelled(conn: Connection, limit: int, lock: bool) -> list[tuple[int, str]]:
    """(id, title and text) of unlabelled mentions, oldest first; `lock` skips and locks rows (PostgreSQL)."""
    m = t.mentions.c
    query = select(m.id, m.title, m.text).where(m.classified_at.is_(None)).order_by(m.id).limit(limit)
    if lock:
        query = query.with_for_update(skip_locked=True)
    return [(r.id, "\n".join(p for p in (r.title, r.text) if p)) for r in conn.execute(query)]
