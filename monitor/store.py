"""All reads and writes of mentionwatch's state, each operation one transaction.

The guarantees live here: mentions are inserted idempotently on (source, external_id) in the same
transaction that advances the source's cursor; alerts are written to the outbox in the same
transaction that marks their mention routed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from sqlalchemy import and_, bindparam, case, create_engine, event, func, or_, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from alerts.attention import CLOCK_INTENTS
from alerts.grouping import GroupState
from alerts.reply_clock import OPEN_STATES, ClockRow
from classifiers.base import Labels
from monitor import schema as t
from monitor.health import SourceHealth
from monitor.logs import REDACTOR
from monitor.models import Gap, Match, Post, TeamReply

if TYPE_CHECKING:
    from alerts.silences import Silence


KUDOS_ROUTE = "kudos"  # the notifications of praise for a kudos channel: never an alert
BACKFILL_ROUTE = "backfill"  # mentions listed in a brand's backlog summary (first run, long outage)


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
    thread_id: str | None = None
    parent_id: str | None = None


def _redacted(payload: dict) -> dict:
    """A Slack payload with every known secret replaced; a file's bytes are left alone."""
    return {k: v if k == "content_b64" else REDACTOR.redact_value(v) for k, v in payload.items()}


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


@dataclass(frozen=True)
class StatusUpdate:
    """A chat.update of the message `message_id` posted: `restyle` maps its newest payload to the next."""

    message_id: int
    mention_id: int
    dedupe_key: str
    restyle: Callable[[dict], dict]


@dataclass(frozen=True)
class NewNotification:
    """A mention routed to one route: `waiting` for its group's message, `silenced`, or carried at once
    by `alert` (a thread reply to an earlier message, or folded into a spike's thread)."""

    mention_id: int
    brand: str
    route: str
    channel: str
    group_key: str
    urgent: bool
    state: str
    silence_id: int | None = None
    alert: NewAlert | None = None
    carried_by: int | None = None  # an `attached` cross-post: the message already carrying its earlier twin


@dataclass(frozen=True)
class Crosspost:
    """A routed mention a later one joins: it, the notifications of its alert routes, its platform and time."""

    mention_id: int
    notifications: list[NewNotification]
    source: str
    at: datetime


@dataclass(frozen=True)
class WaitingItem:
    notification_id: int
    brand: str
    mention: StoredMention
    labels: Labels
    deadline: datetime | None
    silence_id: int | None
    silence_reason: str | None
    closed: bool = False  # its reply clock was closed (answered, handled, not relevant) while it waited
    also: tuple[tuple[str, str | None], ...] = ()  # its cross-posts (source id, url)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", t.sqlite_pragmas)
        return engine
    # psycopg reports rowcount -1 for INSERT … ON CONFLICT DO NOTHING unless asked to keep it; the
    # "was this new?" answers (Slack events, digests, responses, clocks) depend on it.
    return create_engine(url, pool_pre_ping=True, execution_options={"preserve_rowcount": True})


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
                    drops: Counter, now: datetime, gaps: Sequence[Gap] = (),
                    replies: Sequence[TeamReply] = ()) -> list[int]:
        """Store new mentions and advance the cursor atomically; returns ids of mentions new to us.

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

    # --- source health -------------------------------------------------------------------------

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
                 .where(m.classified_at.is_not(None), m.routed_at.is_(None),
                        m.extra["backfill"].as_string().is_(None))  # backlog: summarised per brand instead
                 .order_by(m.id, lab.created_at.desc()))
        out: dict[int, tuple[StoredMention, Labels]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query.limit(limit * 2)).mappings():
                if row["id"] not in out:
                    out[row["id"]] = (_mention(row), _labels(row))
        return list(out.values())[:limit]

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

    def _queue(self, conn, alerts: Sequence[NewAlert], now: datetime) -> None:
        """Every outbox row passes here: its payload is redacted (no `${VAR}` value or token is ever sent)."""
        if alerts:
            conn.execute(self._insert_ignore(t.alerts, ["dedupe_key"]),
                         [{**asdict(a), "payload": _redacted(a.payload), "state": "pending", "attempts": 0,
                           "created_at": now} for a in alerts])

    # --- routing: notifications, groups, thread replies, silences --------------------------------

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
                if thread_of is not None or first is not None:
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

    def message_of(self, mention_id: int) -> int | None:
        """The outbox id of the message that carried this mention (top-level or thread reply), if any yet:
        its alert, else its kudos message when it is on the reply clock (praise owed an answer)."""
        n, c = t.notifications.c, t.reply_clock.c
        clocked = select(c.mention_id).where(c.mention_id == mention_id).exists()
        with self.engine.connect() as conn:
            return conn.execute(select(n.alert_id).where(n.mention_id == mention_id, n.alert_id.is_not(None),
                                                         or_(n.route != KUDOS_ROUTE, clocked))
                                .order_by(case((n.route == KUDOS_ROUTE, 1), else_=0), n.id).limit(1)).scalar()

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

    # --- the Slack outbox ----------------------------------------------------------------------

    def outbox(self, limit: int) -> list[AlertRow]:
        a = t.alerts.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(a.id, a.dedupe_key, a.kind, a.mention_id, a.channel, a.payload, a.state,
                                       a.attempts, a.created_at, a.sending_at, a.op, a.thread_of, a.updates)
                                .where(a.state.in_(("pending", "sending"))).order_by(a.id).limit(limit)).all()
        return [AlertRow(**r._mapping) for r in rows]

    def fold_bursts(self, per_minute: int, now: datetime, fold: Callable[[dict], dict]) -> int:
        """Keep each channel within `per_minute` top-level messages: a pending top-level post beyond it
        becomes a reply in the thread of the channel's latest top-level message (its own replies follow
        it there), its payload restyled by `fold`. One transaction, before anything is claimed, so what
        is sent and what reconciliation looks for agree. Returns how many were folded."""
        a = t.alerts.c
        top = and_(a.op == "post", a.thread_of.is_(None))
        folded = 0
        with self.engine.begin() as conn:
            pending = conn.execute(select(a.id, a.channel, a.payload).where(a.state == "pending", top)
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
                                 .values(thread_of=carrier, payload=fold(row.payload)))
                    conn.execute(update(t.alerts).where(a.thread_of == row.id, a.state == "pending")
                                 .values(thread_of=carrier))
                    folded += 1
        return folded

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

    # --- Slack events ---------------------------------------------------------------------------

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

    # --- trends --------------------------------------------------------------------------------

    def active_spike(self, brand: str) -> dict | None:
        """The brand's spike in progress (id, metric, started_at, alert_id, calm_since, details), or None."""
        s = t.spikes.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.spikes).where(s.brand == brand, s.state == "active")
                               .order_by(s.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def start_spike(self, brand: str, metric: str, details: dict, alert: NewAlert, now: datetime) -> int | None:
        """The spike row and its alert in one transaction; None when the brand already has a spike running."""
        s, a = t.spikes.c, t.alerts.c
        with self.engine.begin() as conn:
            if conn.execute(select(s.id).where(s.brand == brand, s.state == "active")).first() is not None:
                return None
            self._queue(conn, [alert], now)
            alert_id = conn.execute(select(a.id).where(a.dedupe_key == alert.dedupe_key)).scalar()
            result = conn.execute(t.spikes.insert().values(brand=brand, metric=metric, state="active", started_at=now,
                                                           alert_id=alert_id, details=details))
            return result.inserted_primary_key[0]

    def set_spike_calm(self, spike_id: int, calm_since: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.spikes).where(t.spikes.c.id == spike_id).values(calm_since=calm_since))

    def end_spike(self, spike_id: int, alert: NewAlert, now: datetime) -> bool:
        """Mark the spike ended and queue its "over" message together; False if it had already ended."""
        s = t.spikes.c
        with self.engine.begin() as conn:
            ended = conn.execute(update(t.spikes).where(s.id == spike_id, s.state == "active")
                                 .values(state="ended", ended_at=now)).rowcount
            if ended:
                self._queue(conn, [alert], now)
            return bool(ended)

    def last_digest_week(self, brand: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(t.digests.c.week)).where(t.digests.c.brand == brand)).scalar()

    def commit_digest(self, brand: str, week: str, alert: NewAlert, now: datetime) -> bool:
        """Record the week's digest and queue its upload in one transaction, once per (brand, week) even when
        two processes race or the daemon restarts; returns whether this call queued it."""
        d, a = t.digests.c, t.alerts.c
        with self.engine.begin() as conn:
            claimed = conn.execute(self._insert_ignore(t.digests, ["brand", "week"]).values(
                brand=brand, week=week, created_at=now)).rowcount
            if not claimed:
                return False
            self._queue(conn, [alert], now)
            alert_id = conn.execute(select(a.id).where(a.dedupe_key == alert.dedupe_key)).scalar()
            conn.execute(update(t.digests).where(d.brand == brand, d.week == week).values(alert_id=alert_id))
            return True

    # --- export --------------------------------------------------------------------------------

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

    # --- reply clock ---------------------------------------------------------------------------

    def clock_candidates(self, routed_since: datetime, limit: int = 500) -> list[tuple[StoredMention, Labels, str]]:
        """Mentions routed since `routed_since` and notified (not silenced, dropped or attached to a
        cross-post's item) that may need a reply and have no clock yet, each with its newest labels and
        the brand it was notified for (an alert's before kudos'). The filter is a superset of
        `alerts.attention`'s reply clock, which the caller applies exactly. The time bound keeps this an
        index range, not a table scan."""
        m, lab, n, c = t.mentions.c, t.labels.c, t.notifications.c, t.reply_clock.c
        brand = (select(n.brand).where(n.mention_id == m.id, n.state.not_in(("silenced", "dropped", "attached")))
                 .order_by(case((n.route == KUDOS_ROUTE, 1), else_=0), n.id).limit(1)
                 .correlate(t.mentions).scalar_subquery())
        maybe = or_(lab.needs_reply.is_(True), lab.intent.in_(CLOCK_INTENTS),
                    m.extra["needs_reply_hint"].as_string().is_not(None))
        has_clock = select(c.mention_id).where(c.mention_id == m.id).exists()
        query = (select(t.mentions, t.labels, brand.label("notified_brand"))
                 .join(t.labels, lab.mention_id == m.id)
                 .where(m.routed_at >= routed_since, brand.is_not(None), ~has_clock, maybe)
                 .order_by(m.id, lab.created_at.desc()))
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
        twins = select(m.id).where(m.crosspost_of == c.mention_id)  # an answer on a cross-post answers it too
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

    def _queue_status(self, conn, status: StatusUpdate, now: datetime) -> None:
        """An `update` row for the message `status.message_id` posted, from its newest payload (the last
        update queued, else the message's own), so successive updates compose."""
        a = t.alerts.c
        message = conn.execute(select(a.channel, a.brand, a.payload).where(a.id == status.message_id)).first()
        if message is None:
            return
        newest = conn.execute(select(a.payload).where(a.op == "update", a.updates == status.message_id)
                              .order_by(a.id.desc()).limit(1)).scalar()
        payload = status.restyle(newest if newest is not None else message.payload)
        self._queue(conn, [NewAlert(status.dedupe_key, "status", status.mention_id, message.brand, message.channel,
                                    payload, op="update", updates=status.message_id)], now)

    def thread_root(self, alert_id: int) -> tuple[int, str] | None:
        """The top-level message (id, channel) whose thread the message `alert_id` is in, or is."""
        a = t.alerts.c
        with self.engine.connect() as conn:
            row = conn.execute(select(func.coalesce(a.thread_of, a.id), a.channel).where(a.id == alert_id)).first()
        return (row[0], row[1]) if row else None

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

    def response_rows(self, brand: str | None, since: datetime | None, until: datetime | None = None) -> list[dict]:
        """Every reply clock (brand, source, state, started, deadline) with its first recorded reply time."""
        c, m, r = t.reply_clock.c, t.mentions.c, t.responses.c
        first = (select(func.min(r.responded_at)).where(r.mention_id == c.mention_id).correlate(t.reply_clock)
                 .scalar_subquery())
        query = (select(c.mention_id, c.brand, m.source, c.state, c.started_at, c.deadline,
                        first.label("first_response_at"))
                 .join(t.mentions, m.id == c.mention_id).order_by(c.mention_id))
        if brand is not None:
            query = query.where(c.brand == brand)
        if since is not None:
            query = query.where(c.started_at >= since)
        if until is not None:
            query = query.where(c.started_at < until)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]


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
