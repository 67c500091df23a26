"""The tables, as a new database gets them.

Migrations live in monitor/store/migrations (Alembic revisions, one file per step; run by
monitor.store.migrate): to change the schema, edit the tables here, add a revision that makes the same
change on an old database (see the README there), and add its snapshot test.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, TypeDecorator, UniqueConstraint, func, literal_column, select, text)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

mentions = Table(
    "mentions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("external_id", String(512), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("brand", String(100), nullable=False),
    Column("matched", JSON, nullable=False),
    Column("url", Text),
    Column("author", String(200)),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("created_at", UtcDateTime),
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("thread_id", String(200)),
    Column("parent_id", String(200)),
    Column("reach", Integer),
    Column("extra", JSON, nullable=False),
    Column("classified_at", UtcDateTime),
    Column("routed_at", UtcDateTime),
    # v3: the normalised text's hash (alerts/crossposts.py), set when routed, and the earlier mention whose
    # alert item this cross-post joined instead of getting its own
    Column("text_hash", String(40)),
    Column("crosspost_of", Integer),
    # v8: the newest label's intent (None until labelled), kept by the transaction that labels
    # (monitor.store.rollup), so a report's newest complaints are a walk of ix_mentions_complaints
    Column("intent", String(16)),
    UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
    Index("ix_mentions_classified_at", "classified_at"),
    Index("ix_mentions_routed_at", "routed_at"),
    Index("ix_mentions_brand_created", "brand", "created_at"),
    Index("ix_mentions_thread", "source", "thread_id"),  # v2: later comments find their alerted thread
    Index("ix_mentions_text_hash", "text_hash"),  # v3: a cross-post finds the earlier post of the same text
    Index("ix_mentions_crosspost_of", "crosspost_of"),  # v3: an item's cross-posts, an answer on either
    # v6: idle ticks and pruning read ranges of these, never the whole table (tests/test_retention.py reads the plans)
    Index("ix_mentions_fetched_at", "fetched_at"),
    # v8: the complaints by brand and time; queries spell the predicate as a literal, or SQLite ignores the index
    # (intent is a key column too, so that SQLite, which plans without statistics, prefers it to brand_created)
    Index("ix_mentions_complaints", "brand", "intent", "created_at", sqlite_where=text("intent = 'complaint'"),
          postgresql_where=text("intent = 'complaint'")),
)
# v2, SQLite only: `report` counts stream in this order (brand, UTC day, source) instead of sorting a million rows;
# the day expression must stay identical to monitor.store.reports.day_bucket's.
Index("ix_mentions_report", mentions.c.brand,
      func.strftime(literal_column("'%Y-%m-%d'"), func.coalesce(mentions.c.created_at, mentions.c.fetched_at)),
      mentions.c.source, mentions.c.created_at, mentions.c.fetched_at).ddl_if(dialect="sqlite")

labels = Table(
    "labels", metadata,
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(64), primary_key=True),
    Column("sentiment", String(16), nullable=False),
    Column("sentiment_scores", JSON, nullable=False),
    Column("intent", String(16), nullable=False),
    Column("intent_scores", JSON, nullable=False),
    Column("needs_reply", Boolean, nullable=False),
    Column("needs_reply_score", Float, nullable=False),
    Column("language", String(16)),
    Column("low_confidence", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_labels_newest", "mention_id", "created_at", "model", "sentiment", "intent"),  # v2: newest label, covering
)

cursors = Table(
    "cursors", metadata,
    Column("source_id", String(200), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

source_health = Table(
    "source_health", metadata,
    Column("source_id", String(200), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("kind", String(32)),
    Column("message", Text),
    Column("since", UtcDateTime),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_success_at", UtcDateTime),
    Column("last_attempt_at", UtcDateTime),
    Column("retry_at", UtcDateTime),
)

drop_counts = Table(
    "drop_counts", metadata,
    Column("source_id", String(200), primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("count", Integer, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(300), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="SET NULL")),
    Column("brand", String(100)),
    Column("channel", String(100), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sending_at", UtcDateTime),
    Column("sent_at", UtcDateTime),
    Column("slack_channel_id", String(32)),
    Column("slack_ts", String(32)),
    # v2: what the row does in Slack. post: a new message, in the thread of `thread_of` when set;
    # update: chat.update of the message that row `updates` posted; upload: a file (the weekly digest).
    Column("op", String(16), nullable=False, default="post", server_default="post"),
    Column("thread_of", Integer),
    Column("updates", Integer),
    # v4: which receiver sends the row, and whether its payload is rendered Slack or a neutral Message
    Column("receiver", String(64), nullable=False, default="slack", server_default="slack"),
    Column("format", String(16), nullable=False, default="slack", server_default="slack"),
    # v5: the channel budget (messages a minute) that folded this post into a thread; the receiver says so
    Column("folded", Integer),
    Index("ix_alerts_state_id", "state", "id"),
    Index("ix_alerts_sent_at", "sent_at"),  # v6: pruning finds old sent rows by range
    Index("ix_alerts_mention", "mention_id"),  # v6: a pruned mention's messages lose their link to it
)

responses = Table(
    "responses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("responder", String(200), nullable=False),
    Column("responded_at", UtcDateTime, nullable=False),
    Column("url", Text),
    Column("via", String(32), nullable=False),  # reddit, x, slack, cli
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("mention_id", "via", "responder", "responded_at", name="uq_responses_once"),
)

gaps = Table(
    "gaps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_id", String(200), nullable=False),
    Column("window_start", UtcDateTime),
    Column("window_end", UtcDateTime),
    Column("estimated_count", Integer),
    Column("reason", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_gaps_recorded_at", "recorded_at"),  # v6: pruned by age
)

usage = Table(
    "usage", metadata,
    Column("key", String(200), primary_key=True),     # e.g. "x:reads:<app>"
    Column("period", String(32), primary_key=True),   # e.g. "2026-11"
    Column("count", Integer, nullable=False),
)

slack_channels = Table(
    "slack_channels", metadata,
    Column("name", String(100), primary_key=True),
    Column("channel_id", String(32), nullable=False),
)

# --- version 2: routing, the reply clock, Slack actions, digests and spikes ---------------------

notifications = Table(
    # A mention routed to a channel, waiting to be grouped into a message (Alertmanager's alert in a group).
    "notifications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("brand", String(100), nullable=False),
    Column("route", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("group_key", String(400), nullable=False),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("state", String(16), nullable=False),  # waiting, silenced, queued, folded, dropped, answered
    Column("silence_id", Integer),
    Column("alert_id", Integer, ForeignKey("alerts.id", ondelete="SET NULL")),  # the message that carries it
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("mention_id", "route", name="uq_notifications_mention_route"),
    Index("ix_notifications_state_group", "state", "group_key"),
    Index("ix_notifications_mention", "mention_id"),
    Index("ix_notifications_alert", "alert_id"),  # v6: the mentions a message carries; pruning checks it
    Index("ix_notifications_created", "created_at"),  # v6: reply clock candidates, notified in the lookback
)

group_log = Table(
    # What each group last announced, and when (Alertmanager's notification log).
    "group_log", metadata,
    Column("group_key", String(400), primary_key=True),
    Column("channel", String(100), nullable=False),
    Column("first_sent_at", UtcDateTime, nullable=False),
    Column("last_sent_at", UtcDateTime, nullable=False),
    Column("last_alert_id", Integer),
)

silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),  # {"brand": "acme", "source": "x", ...}
    Column("reason", Text),
    Column("created_by", String(200)),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("expired_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
)

reply_clock = Table(
    # One row per mention that needs an answer: its deadline and where the clock stands.
    "reply_clock", metadata,
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    Column("brand", String(100), nullable=False),
    Column("intent", String(16)),
    Column("started_at", UtcDateTime, nullable=False),
    Column("deadline", UtcDateTime, nullable=False),
    Column("remind_at", UtcDateTime),  # null: the alert came after the reminder time, so no reminder before the deadline
    Column("state", String(16), nullable=False),  # open, handled, snoozed, not_relevant
    Column("snoozed_until", UtcDateTime),
    Column("reminders_sent", Integer, nullable=False, default=0),
    Column("last_reminder_at", UtcDateTime),
    Column("escalated_at", UtcDateTime),
    Column("closed_at", UtcDateTime),
    Column("closed_by", String(200)),
    Column("closed_via", String(32)),  # slack, reaction, cli, a platform (answered there), deleted (by its author)
    Index("ix_reply_clock_state_deadline", "state", "deadline"),
    Index("ix_reply_clock_brand_started", "brand", "started_at"),  # v6: a week's response figures (digest, report)
)

slack_events = Table(
    # Socket Mode events and actions already acted on: Slack redelivers, we act once.
    "slack_events", metadata,
    Column("key", String(200), primary_key=True),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_slack_events_received_at", "received_at"),  # v6: pruned by age
)

label_feedback = Table(
    # A person's correction of a label ("Wrong label"): a training example for `mentionwatch train`.
    "label_feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("text", Text, nullable=False),
    Column("sentiment", String(16)),
    Column("intent", String(16)),
    Column("model", String(64)),
    Column("labelled_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("mention_id", "labelled_by", name="uq_label_feedback_once"),
)

digests = Table(
    "digests", metadata,
    Column("brand", String(100), primary_key=True),
    Column("week", String(10), primary_key=True),  # ISO week, e.g. 2026-W47
    Column("alert_id", Integer),
    Column("created_at", UtcDateTime, nullable=False),
)

spikes = Table(
    "spikes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("brand", String(100), nullable=False),
    Column("metric", String(16), nullable=False),  # volume, negative
    Column("state", String(16), nullable=False),  # active, ended
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("alert_id", Integer),
    Column("details", JSON, nullable=False),
    Column("calm_since", UtcDateTime),  # under the thresholds since then; the spike ends after calm_for
    Index("ix_spikes_brand_state", "brand", "state"),
)

leases = Table(
    # v7: who does a shared job now, when several nodes run on one PostgreSQL (polling a source, the
    # process job). `token` grows each time the lease changes hands: a fencing token.
    "leases", metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("token", Integer, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

mention_daily = Table(
    # v6: mentions per brand, UTC day, source and newest labels, kept when the mentions are pruned, so
    # `report` reads a few rows per day instead of every mention. A mention is counted here from the
    # transaction that labels it (classified_at set) on; a relabel moves its count.
    "mention_daily", metadata,
    Column("brand", String(100), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC, of created_at else fetched_at
    Column("source", String(32), primary_key=True),
    Column("sentiment", String(16), primary_key=True),
    Column("intent", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
)

# The tables version 2 added; the v2 migration creates them (when a later version changes one, freeze its v2
# definition in that migration first).
V2_TABLES = (notifications, group_log, silences, reply_clock, slack_events, label_feedback, digests, spikes)

# The indexes version 6 added (revision v6 creates them on an older database).
V6_INDEXES = ("ix_mentions_fetched_at", "ix_alerts_sent_at", "ix_alerts_mention", "ix_notifications_alert",
              "ix_notifications_created", "ix_slack_events_received_at", "ix_gaps_recorded_at",
              "ix_reply_clock_brand_started")


_DAY = {"sqlite": "strftime('%Y-%m-%d', coalesce(m.created_at, m.fetched_at))",
        "postgresql": "to_char(date_trunc('day', timezone('UTC', coalesce(m.created_at, m.fetched_at))), 'YYYY-MM-DD')"}
# Every labelled mention counted once, under its newest label (created_at, then model name), as reports count it.
ROLLUP_FROM_MENTIONS = {dialect: f"""
INSERT INTO mention_daily (brand, day, source, sentiment, intent, count)
SELECT m.brand, {day}, m.source, l.sentiment, l.intent, count(*)
FROM mentions m JOIN labels l ON l.mention_id = m.id
WHERE m.classified_at IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM labels n WHERE n.mention_id = l.mention_id
    AND (n.created_at > l.created_at OR (n.created_at = l.created_at AND n.model > l.model)))
GROUP BY 1, 2, 3, 4, 5""" for dialect, day in _DAY.items()}

# Each labelled mention's intent from its newest label (revision v8 fills an older database with it).
INTENT_FROM_LABELS = """
UPDATE mentions SET intent = (SELECT l.intent FROM labels l WHERE l.mention_id = mentions.id
                              ORDER BY l.created_at DESC, l.model DESC LIMIT 1)
WHERE classified_at IS NOT NULL"""


SQLITE_MMAP_BYTES = 1 << 30


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers (status, export) run while the daemon writes; busy_timeout serialises writers.

    synchronous=FULL: a commit that marked an alert sent survives a power cut, not just a crash.
    mmap_size: reads (a report scanning a million mentions) map the file instead of copying it.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()

