"""Retention: the `retention:` config, pruning that keeps what is in use, the daily rollup that keeps
report figures across pruning, and idle ticks that read indexes, not whole tables."""

from __future__ import annotations

import re
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, event, text
from typer.testing import CliRunner

from alerts.reply_clock import ClockRow
from monitor.cli import app
from monitor.config import ConfigError, load_settings
from monitor.config.retention import RetentionConfig
from monitor.core.records import NewAlert, NewNotification
from monitor.prune import prune
from monitor.report import build_report
from monitor.store import Store, schema
from monitor.store.migrate import current_revision, head, migrate
from tests.support.config import config_dict, pipeline_with_clock, write_config
from tests.support.histories import add, add_gap, add_many, labels
from tests.support.database import create_v1_database
from tests.support.schemas import legacy_sqlite

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=400)


# --- config -----------------------------------------------------------------------------------------

def test_defaults_keep_a_year_of_mentions_and_a_month_of_sent_messages(tmp_path):
    settings, _ = load_settings(write_config(tmp_path, config_dict(tmp_path, "http://127.0.0.1:9", [])))
    policy = settings.retention
    assert (policy.mentions, policy.outbox, policy.digest_images, policy.slack_events, policy.history) == (
        timedelta(days=365), timedelta(days=30), timedelta(weeks=12), timedelta(days=7), timedelta(days=90))
    assert policy.batch_size == 500 and policy.enabled
    assert policy.cutoffs(NOW).outbox == NOW - timedelta(days=30)


@pytest.mark.parametrize(("retention", "key", "expected"), [
    ({"mentions": "7d"}, "retention.mentions", "at least 28d"),
    ({"outbox": "a month"}, "retention.outbox", "expected a duration"),
    ({"keep": "1d"}, "retention.keep", "unknown key"),
    ({"batch_size": 0}, "retention.batch_size", "greater than or equal to 1"),
])
def test_a_bad_retention_setting_names_its_key_and_value(tmp_path, retention, key, expected):
    config = config_dict(tmp_path, "http://127.0.0.1:9", [], retention=retention)
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, config))
    problems = caught.value.problems
    assert any(p.path == key and expected in p.expected for p in problems), "\n".join(map(str, problems))
    assert all(re.match(rf"^{re.escape(str(tmp_path))}.*:\d+: ", str(p)) for p in problems)


def test_mentions_are_kept_at_least_as_long_as_a_spike_baseline(tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:9", [], retention={"mentions": "30d"})
    config["brands"]["acme"]["spikes"] = {"baseline": "60d"}
    with pytest.raises(ConfigError, match=r"retention.mentions \(30d\) is shorter than brands.acme.spikes.baseline"):
        load_settings(write_config(tmp_path, config))


# --- pruning ------------------------------------------------------------------------------------------

def _queue(store: Store, key: str, when: datetime, *, sent: bool, mention: int | None = None, op: str = "post",
           thread_of: int | None = None) -> int:
    store.commit_routing([], [NewAlert(key, "mention", mention, "acme", "#acme", {"text": key}, op=op,
                                       thread_of=thread_of)], when)
    (row,) = [r for r in store.outbox(1000) if r.dedupe_key == key]
    if sent:
        store.claim([row], when)
        store.settle([(row.id, "C1", f"{when.timestamp()}")], [], when)
    return row.id


@pytest.fixture
def aged(tmp_path):
    """A store with a year-old history: some of it prunable, some still in use, some recent."""
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    ids = {name: add(store, "acme", "reddit", OLD, "negative", "complaint", f"old {name}")
           for name in ("gone", "open_clock", "waiting", "feedback", "unsent_alert")}
    ids["unlabelled"] = add(store, "acme", "reddit", OLD, None)
    ids["recent"] = add(store, "acme", "reddit", NOW - timedelta(days=3), "positive", "praise")
    store.commit_routing([i for n, i in ids.items() if n != "unlabelled"], [], OLD)
    store.create_clocks([ClockRow(ids["open_clock"], "acme", "open", OLD, OLD + timedelta(hours=4))])
    store.commit_routed([], [NewNotification(ids["waiting"], "acme", "root", "#acme", "g1", False, "waiting")], [], OLD)
    store.record_label_feedback(ids["feedback"], "old feedback", "positive", "praise", "m", "sam", OLD, None)
    out = {"mentions": ids}
    out["sent"] = _queue(store, "old-sent", OLD, sent=True, mention=ids["gone"])
    out["parent"] = _queue(store, "old-parent", OLD, sent=True)
    out["reply"] = _queue(store, "pending-reply", OLD, sent=False, thread_of=out["parent"])
    out["unsent"] = _queue(store, "old-unsent", OLD, sent=False, mention=ids["unsent_alert"])
    out["clock_message"] = _queue(store, "clock-message", OLD, sent=True, mention=ids["open_clock"])
    out["digest_kept"] = _queue(store, "digest-60d", NOW - timedelta(days=60), sent=True, op="upload")
    out["digest_gone"] = _queue(store, "digest-100d", NOW - timedelta(days=100), sent=True, op="upload")
    store.first_time("event-old", NOW - timedelta(days=8))
    store.first_time("event-new", NOW - timedelta(days=1))
    add_gap(store, "acme", "reddit", OLD, OLD + timedelta(hours=1), 5, "old gap")
    add_gap(store, "acme", "reddit", NOW - timedelta(days=2), NOW - timedelta(days=1), 5, "new gap")
    yield store, out
    store.close()


def _outbox_keys(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(text("SELECT dedupe_key FROM alerts")).scalars())


def test_dry_run_counts_what_prune_then_deletes_and_what_is_in_use_stays(aged):
    store, rows = aged
    policy = RetentionConfig(batch_size=2)
    expected = {"outbox": 1, "digest_images": 1, "group_log": 0, "mentions": 1, "slack_events": 1, "gaps": 1,
                "silences": 0, "spikes": 0}
    assert store.prunable(policy.cutoffs(NOW)) == expected
    assert prune(store, policy, NOW) == {k: v for k, v in expected.items() if v}
    assert prune(store, policy, NOW) == {}
    ids = rows["mentions"]
    with store.engine.connect() as conn:
        left = set(conn.execute(text("SELECT id FROM mentions")).scalars())
        assert conn.execute(text("SELECT count(*) FROM labels WHERE mention_id = :i"), {"i": ids["gone"]}).scalar() == 0
    assert left == set(ids.values()) - {ids["gone"]}
    assert _outbox_keys(store) == {"old-parent", "pending-reply", "old-unsent", "clock-message", "digest-60d"}
    assert [g["reason"] for g in store.gaps()] == ["new gap"]
    assert store.first_time("event-new", NOW) is False and store.first_time("event-old", NOW) is True
    assert store.reply_clock(ids["open_clock"]).state == "open"


def test_once_the_parent_is_settled_and_the_clock_closed_they_go_too(aged):
    store, rows = aged
    store.claim([r for r in store.outbox(1000) if r.id == rows["reply"]], OLD)
    store.settle([(rows["reply"], "C1", "1.5")], [], OLD)
    store.transition_clock(rows["mentions"]["open_clock"], states=("open",), changes={"state": "handled"}, now=OLD)
    deleted = prune(store, RetentionConfig(), NOW)
    assert deleted["outbox"] == 4 and deleted["mentions"] == 2
    assert _outbox_keys(store) == {"old-unsent", "digest-60d"}


def test_a_pruned_year_still_reports_its_counts(aged):
    store, _ = aged
    settings = load_settings(write_config(Path(store.engine.url.database).parent,
                                          config_dict(Path(store.engine.url.database).parent, "http://x", [])))[0]

    def year() -> list:
        (report,) = build_report(store, settings, since=OLD - timedelta(days=3), now=NOW, by="week", brand="acme")
        return [(p.period, p.volume, dict(p.sentiment), dict(p.intents)) for p in report.periods]

    before = year()
    assert before[0][1:] == (6, {"negative": 5}, {"complaint": 5})  # one of the six is not labelled
    prune(store, RetentionConfig(), NOW)
    assert year() == before


def test_the_rollup_counts_each_mention_once_under_its_newest_labels(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    day = NOW - timedelta(days=10)
    ids = add_many(store, "acme", "x", [(day, "negative", "complaint", "a"), (day, "neutral", "question", "b")])
    store.save_labels([(ids[0], labels("negative", "complaint"))], day)  # the same label again: counted once
    store.save_labels([(ids[1], labels("positive", "praise", "newer-model"))], day + timedelta(hours=1))
    store.save_labels([(ids[1], labels("negative", "other", "an-older-label"))], day)  # not the newest
    with store.engine.connect() as conn:
        cells = sorted(conn.execute(text("SELECT sentiment, intent, count FROM mention_daily")).all())
    assert cells == [("negative", "complaint", 1), ("neutral", "question", 0), ("positive", "praise", 1)]
    store.close()


def test_prune_dry_run_lists_every_kind(tmp_path):
    path = write_config(tmp_path, config_dict(tmp_path, "http://127.0.0.1:9", []))
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    add(store, "acme", "reddit", OLD, "negative", "complaint")
    store.commit_routing([1], [], OLD)
    store.close()
    result = CliRunner().invoke(app, ["prune", "--dry-run", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert re.search(r"would delete\s+1\s+mentions", result.output)
    assert len(re.findall(r"^would delete", result.output, re.M)) == 8  # every kind, even with nothing to go
    result = CliRunner().invoke(app, ["prune", "--config", str(path)])
    assert re.search(r"deleted\s+1\s+mentions", result.output)


# --- the v6 migration ------------------------------------------------------------------------------

def test_a_version_4_database_gets_the_rollup_of_its_labelled_mentions(tmp_path):
    path = tmp_path / "v4.db"
    legacy_sqlite(path, 4)
    with sqlite3.connect(path) as conn:
        for i, (sentiment, intent) in enumerate([("negative", "complaint")] * 2 + [("positive", "praise")]):
            conn.execute("INSERT INTO mentions (source, external_id, source_id, brand, matched, text, created_at, "
                         "fetched_at, extra, classified_at) VALUES ('x', ?, 'acme/x', 'acme', '{}', 't', "
                         "'2026-11-02 23:30:00', '2026-11-03 00:10:00', '{}', '2026-11-03 00:10:00')", (f"x{i}",))
            conn.execute("INSERT INTO labels VALUES (?, 'm', ?, '{}', ?, '{}', 0, 0.5, NULL, 0, '2026-11-03 00:10:00')",
                         (i + 1, sentiment, intent))
        conn.execute("INSERT INTO mentions (source, external_id, source_id, brand, matched, text, fetched_at, extra) "
                     "VALUES ('x', 'unlabelled', 'acme/x', 'acme', '{}', 't', '2026-11-03 00:10:00', '{}')")
    store = Store(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        assert current_revision(conn) == head()
        assert sorted(conn.execute(text("SELECT day, sentiment, intent, count FROM mention_daily")).all()) == [
            ("2026-11-02", "negative", "complaint", 2), ("2026-11-02", "positive", "praise", 1)]
        names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
    assert set(schema.V6_INDEXES) <= names
    rows = store.daily_counts(["acme"], datetime(2026, 11, 1, tzinfo=timezone.utc), NOW)
    assert [(day, volume) for _, day, _, volume, *_ in rows] == [("2026-11-02", 3), ("2026-11-03", 1)]
    store.close()


# --- idle ticks read indexes -------------------------------------------------------------------------

GROWING = ("mentions", "labels", "alerts", "notifications", "reply_clock")


@contextmanager
def recorded(store: Store) -> Iterator[list[tuple[str, object]]]:
    """The statements run inside the block, planned with fresh statistics on PostgreSQL (as autovacuum
    keeps them: PostgreSQL always plans with statistics)."""
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    statements: list[tuple[str, object]] = []

    def listener(conn, cursor, statement, params, context, many):
        statements.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)


def _full_scans(store: Store, statements: list[tuple[str, object]]) -> list[str]:
    """Each statement's plan, kept where it reads a growing table whole (SQLite: SCAN; PostgreSQL: Seq Scan
    with sequential scans priced out, so only a query no index can serve shows one)."""
    found = []
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()
        if store.engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
        for statement, params in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            prefix = "EXPLAIN " if store.engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
            cursor.execute(prefix + statement, params)
            plan = [str(row[-1]) for row in cursor.fetchall()]
            scans = [line for line in plan if re.search(rf"(^SCAN|Seq Scan on) ({'|'.join(GROWING)})\b", line.strip())]
            if scans:
                found.append(f"{' '.join(statement.split())[-400:]}\n    {scans}")
    return found


def test_an_idle_tick_reads_no_growing_table_whole(tmp_path, slack, database):
    url = database
    config = config_dict(tmp_path, slack.api_url, [], storage={"url": url})
    config["routes"] = {"group_wait": "0s", "group_by": ["mention"]}
    config["brands"]["acme"].update(digest={"enabled": True}, spikes={"enabled": True})
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, NOW)
    add_many(store, "acme", "reddit", [(NOW - timedelta(days=20, minutes=i), "neutral", "other", f"acme {i}")
                                       for i in range(2000)])
    for i in range(20):
        add(store, "acme", "reddit", NOW - timedelta(minutes=i), "negative", "complaint", f"acme is broken {i}")
    pipeline.process()
    assert slack.posted(), "the complaints were alerted before the idle tick"
    clock[0] = NOW + timedelta(minutes=5)  # trends (spikes, digest) run too
    with recorded(store) as statements:
        pipeline.process()
    assert len(statements) > 10
    assert _full_scans(store, statements) == []


def test_the_newest_complaints_are_read_newest_first_up_to_the_limit(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    add(store, "acme", "x", NOW - timedelta(days=5), "negative", "complaint", "old login complaint")
    add(store, "acme", "x", NOW - timedelta(days=5), "positive", "praise", "old praise")
    for _ in range(2):
        add(store, "acme", "x", NOW - timedelta(days=1), "negative", "complaint", "new billing complaint")
    add(store, "acme", "x", NOW - timedelta(hours=1), "neutral", "question", "a question")
    add(store, "globex", "x", NOW - timedelta(days=1), "positive", "praise", "globex praise")
    week = NOW - timedelta(days=7)
    assert store.complaint_texts("acme", week, NOW, 2) == ["new billing complaint"] * 2
    assert sorted(store.complaint_texts("acme", week, NOW, 10)) == ["new billing complaint"] * 2 + ["old login complaint"]
    assert store.complaint_texts("acme", NOW - timedelta(days=3), NOW, 10) == ["new billing complaint"] * 2
    assert store.complaint_texts("globex", week, NOW, 10) == []
    store.close()


# --- the v8 migration: complaints by index -------------------------------------------------------------

def test_a_version_7_database_gets_each_mentions_newest_intent(database):
    create_v1_database(database)
    engine = create_engine(database)
    migrate(engine, "v7")
    mention = ("INSERT INTO mentions (id, source, external_id, source_id, brand, matched, text, created_at, fetched_at, "
               "extra, classified_at) VALUES (:id, 'x', :ext, 'acme/x', 'acme', '{}', :text, :at, :at, '{}', :labelled)")
    label = ("INSERT INTO labels VALUES (:id, :model, 'negative', '{}', :intent, '{}', false, 0.5, NULL, false, :at)")
    at = NOW - timedelta(days=1)
    with engine.begin() as conn:
        for i, text_ in enumerate(("now praise", "still a complaint", "never labelled"), 1):
            conn.execute(text(mention), {"id": i, "ext": f"x{i}", "text": text_, "at": at - timedelta(hours=i),
                                         "labelled": None if i == 3 else at})
        for i, model, intent, when in ((1, "old", "complaint", at), (1, "new", "praise", NOW),
                                       (2, "a", "praise", at), (2, "b", "complaint", at)):  # a tie: the greater model
            conn.execute(text(label), {"id": i, "model": model, "intent": intent, "at": when})
    engine.dispose()
    store = Store(database)
    with store.engine.connect() as conn:
        assert current_revision(conn) == head() == "v8"
        assert conn.execute(text("SELECT id, intent FROM mentions ORDER BY id")).all() == [
            (1, "praise"), (2, "complaint"), (3, None)]
    assert store.complaint_texts("acme", NOW - timedelta(days=7), NOW, 10) == ["still a complaint"]
    store.close()


def test_a_relabel_moves_a_mention_in_and_out_of_the_complaints(database):
    store = Store(database)
    first = add(store, "acme", "x", NOW - timedelta(hours=2), "negative", "complaint", "first complaint")
    second = add(store, "acme", "x", NOW - timedelta(hours=1), "neutral", "question", "second, a question")
    week = NOW - timedelta(days=7)
    assert store.complaint_texts("acme", week, NOW, 10) == ["first complaint"]
    store.save_labels([(first, labels("positive", "praise", "new-model")),
                       (second, labels("negative", "complaint", "new-model"))], NOW)
    assert store.complaint_texts("acme", week, NOW, 10) == ["second, a question"]
    store.close()


def test_the_newest_complaints_are_a_walk_of_their_index(database):
    store = Store(database)
    add_many(store, "acme", "x", [(NOW - timedelta(minutes=i), "neutral", "complaint" if i % 10 == 0 else "other",
                                   f"post {i}") for i in range(500)])
    with recorded(store) as statements:
        texts = store.complaint_texts("acme", NOW - timedelta(days=1), NOW + timedelta(minutes=1), 5)
    assert texts == [f"post {i}" for i in range(0, 50, 10)]
    undated, dated = statements  # undated mentions (none here) first, by either index's `created_at IS NULL`
    assert _full_scans(store, statements) == []
    with store.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(("EXPLAIN " if store.engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN ") + dated[0],
                       dated[1])
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    assert "ix_mentions_complaints" in plan, plan
    store.close()
