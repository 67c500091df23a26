"""What every repository shares: the engine, dialect-aware inserts, and writing outbox rows."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from sqlalchemy import case, create_engine, event, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from alerts import slack_render
from monitor.config.receivers import SLACK
from monitor.core.labels import Labels
from monitor.core.logs import REDACTOR, get_logger
from monitor.core.records import KUDOS_ROUTE, NewAlert, StatusUpdate, StoredMention
from monitor.store import schema as t
from monitor.store.migrate import migrate

log = get_logger(__name__)

if TYPE_CHECKING:
    from alerts.silences import Silence


def _redacted(payload: dict) -> dict:
    """A Slack payload with every known secret replaced; a file's bytes are left alone."""
    return {k: v if k == "content_b64" else REDACTOR.redact_value(v) for k, v in payload.items()}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", t.sqlite_pragmas)
        return engine
    # psycopg reports rowcount -1 for INSERT … ON CONFLICT DO NOTHING unless asked to keep it; the
    # "was this new?" answers (Slack events, digests, responses, clocks) depend on it.
    return create_engine(url, pool_pre_ping=True, execution_options={"preserve_rowcount": True})


class Repository:
    """One engine, many concerns: each repository of the store is a mixin over this base."""

    # Receivers whose messages take replies in their thread / edits, as the receiver registry declares them
    # (`alerts.receivers.Receivers` sets both); until then the default receiver, Slack, which does both.
    threaded: frozenset[str] = frozenset({SLACK})
    updatable: frozenset[str] = frozenset({SLACK})

    def __init__(self, url: str):
        self.engine = make_engine(url)
        migrate(self.engine)
        self._dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite

    def close(self) -> None:
        self.engine.dispose()

    def _insert_ignore(self, table, index_elements: Sequence[str]):
        return self._dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))

    def _upsert(self, table, keys: Sequence[str], values: dict):
        stmt = self._dialect.insert(table).values(**values)
        changes = {k: v for k, v in values.items() if k not in keys}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=changes)

    def _queue(self, conn, alerts: Sequence[NewAlert], now: datetime) -> None:
        """Every outbox row passes here: its payload is redacted (no `${VAR}` value or token is ever sent).

        A follow-up of a message whose receiver cannot take it is not queued: a thread reply or a link to
        it (reminders, escalations) needs a receiver with threads, an update one with updates (Receivers)."""
        alerts = self._follow_ups_it_takes(conn, alerts)
        if alerts:
            conn.execute(self._insert_ignore(t.alerts, ["dedupe_key"]),
                         [{**asdict(a), "payload": _redacted(a.payload), "state": "pending", "attempts": 0,
                           "created_at": now} for a in alerts])

    def _follow_ups_it_takes(self, conn, alerts: Sequence[NewAlert]) -> list[NewAlert]:
        refs = {ref for a in alerts for ref in (a.thread_of, a.updates, a.payload.get("link_of")) if ref is not None}
        if not refs:
            return list(alerts)
        c = t.alerts.c
        receiver_of = dict(conn.execute(select(c.id, c.receiver).where(c.id.in_(sorted(refs)))).all())

        def takes(ref: int | None, able: frozenset[str]) -> bool:
            return ref is None or ref not in receiver_of or receiver_of[ref] in able

        kept = [a for a in alerts if takes(a.thread_of, self.threaded) and takes(a.payload.get("link_of"), self.threaded)
                and takes(a.updates, self.updatable)]
        if len(kept) < len(alerts):
            log.debug("%d follow-up(s) of a message whose receiver cannot take them not queued", len(alerts) - len(kept))
        return kept

    @staticmethod
    def _message_of(conn, mention_id: int) -> int | None:
        n, c = t.notifications.c, t.reply_clock.c
        clocked = select(c.mention_id).where(c.mention_id == mention_id).exists()
        return conn.execute(select(n.alert_id).where(n.mention_id == mention_id, n.alert_id.is_not(None),
                                                     or_(n.route != KUDOS_ROUTE, clocked))
                            .order_by(case((n.route == KUDOS_ROUTE, 1), else_=0), n.id).limit(1)).scalar()

    def _queue_status(self, conn, status: StatusUpdate, now: datetime) -> None:
        """An `update` row for the message `status.message_id` posted. For a neutral message it holds the
        change, which the receiver renders at send time over the message and the changes queued before it;
        Block Kit queued by an older version is edited here instead, from its newest payload (the last
        update queued, else the message's own), so successive updates compose either way."""
        a = t.alerts.c
        message = conn.execute(select(a.channel, a.brand, a.payload, a.receiver, a.format)
                               .where(a.id == status.message_id)).first()
        if message is None or message.receiver not in self.updatable:
            return
        if message.format == "neutral":
            payload, fmt = {"change": status.change}, "neutral"
        else:
            newest = conn.execute(select(a.payload).where(a.op == "update", a.updates == status.message_id)
                                  .order_by(a.id.desc()).limit(1)).scalar()
            shown = newest if newest is not None else message.payload
            payload, fmt = slack_render.apply(shown, status.change), "slack"
            if payload == shown:
                return  # nothing this message shows changes (a reminder that quoted no post)
        self._queue(conn, [NewAlert(status.dedupe_key, "status", status.mention_id, message.brand, message.channel,
                                    payload, op="update", updates=status.message_id, format=fmt)], now)


class _AlreadyDone(Exception):
    """Another run did this first: the transaction is rolled back, nothing is written."""


def _silence(row) -> Silence:
    from alerts.silences import Silence  # alerts builds on the store; imported when first needed

    return Silence(row["id"], row["matchers"], row["reason"], row["created_by"], row["starts_at"], row["ends_at"],
                   row["expired_at"], row.get("held", 0))


def _mention(row) -> StoredMention:
    return StoredMention(**{f: row[f] for f in StoredMention.__dataclass_fields__})


def _labels(row) -> Labels:
    return Labels(sentiment=row["sentiment"], sentiment_scores=row["sentiment_scores"], intent=row["intent"],
                  intent_scores=row["intent_scores"], needs_reply=row["needs_reply"],
                  needs_reply_score=row["needs_reply_score"], model=row["model"], language=row["language"],
                  low_confidence=row["low_confidence"])
