"""Storage guarantees: idempotent inserts, atomic cursor advance, upgrades that keep data."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from typer.testing import CliRunner

from monitor.cli import app
from monitor.core.records import Match, Post
from monitor.store import Store
from monitor.store.migrate import SchemaTooNew, current_revision, head
from tests.support.schemas import legacy_sqlite
from tests.support.database import create_v1_database, v1_database_with_a_mention

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
MATCH = Match({"acme": ["Acme"]})


def posts(*ids: str) -> list[tuple[Post, Match]]:
    return [(Post("feed", i, f"Acme post {i}"), MATCH) for i in ids]


def test_the_same_post_is_stored_once(database):
    store = Store(database)
    first = store.commit_poll("acme/a", posts("1", "2"), {"n": 1}, Counter(), NOW)
    (third,) = store.commit_poll("acme/b", posts("2", "3"), {"n": 2}, Counter(), NOW)  # ids may have gaps on PostgreSQL
    assert len(first) == 2 and third > max(first)
    assert store.unclassified(10) == [(first[0], "Acme post 1"), (first[1], "Acme post 2"), (third, "Acme post 3")]


def test_cursor_advances_only_with_its_mentions(database):
    store = Store(database)
    store.commit_poll("acme/a", posts("1"), {"etag": "v1"}, Counter(no_match=2), NOW)
    broken = [(Post("feed", "2", None), MATCH)]  # text is required: the transaction must fail
    with pytest.raises(IntegrityError):
        store.commit_poll("acme/a", posts("3") + broken, {"etag": "v2"}, Counter(no_match=5), NOW)
    assert store.get_cursor("acme/a") == {"etag": "v1"}
    assert [mid for mid, _ in store.unclassified(10)] == [1]
    assert store.drop_counts() == {"acme/a": {"no_match": 2}}


def test_sqlite_runs_in_wal_mode(tmp_path):
    Store(f"sqlite:///{tmp_path / 'mw.db'}").close()
    with sqlite3.connect(tmp_path / "mw.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_upgrading_a_version_1_database_keeps_its_data(database):
    engine = v1_database_with_a_mention(database, NOW)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO cursors VALUES ('acme/a', '{\"etag\": \"e\"}', :at)"), {"at": NOW})
    engine.dispose()
    store = Store(database)
    assert store.unclassified(5) == [(1, "kept")]
    assert store.get_cursor("acme/a") == {"etag": "e"}
    with store.engine.connect() as conn:
        assert current_revision(conn) == head() == "v8"


def test_a_database_the_last_release_before_alembic_left_at_version_6_upgrades_with_its_outbox(tmp_path):
    path = tmp_path / "v6.db"
    legacy_sqlite(path, 6)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO alerts (dedupe_key, kind, channel, payload, state, attempts, created_at, op, receiver, "
                     "format) VALUES ('old:1', 'mention', '#a', '{\"text\": \"queued\"}', 'pending', 0, "
                     "'2026-11-20 11:00:00', 'post', 'slack', 'slack')")
    store = Store(f"sqlite:///{path}")
    assert [row.dedupe_key for row in store.outbox(10)] == ["old:1"]
    with store.engine.connect() as conn:
        assert current_revision(conn) == head()
        assert conn.exec_driver_sql("SELECT count(*) FROM leases").scalar() == 0
    store.close()


def test_a_database_from_a_newer_version_is_refused(database):
    Store(database).close()
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'v99_from_the_future'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match="upgrade mentionwatch"):
        Store(database)


@pytest.mark.slow  # thirty processes
def test_simultaneous_starts_on_an_old_or_empty_database_all_succeed(database):
    """Thirty processes starting at once (the issue saw 3 of 30 crash): one migrates, the others wait and agree."""
    if not database.startswith("sqlite"):
        create_v1_database(database)
    code = "import sys; from monitor.store import Store; Store(sys.argv[1]).close()"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    starts = [subprocess.Popen([sys.executable, "-c", code, database], env=env, stderr=subprocess.PIPE)
              for _ in range(30)]
    failures = [p.stderr.read().decode()[-300:] for p in starts if p.wait(timeout=120) != 0]
    assert failures == []
    with Store(database).engine.connect() as conn:
        assert current_revision(conn) == head()


def test_operators_see_and_run_the_upgrade_with_db_commands(database, tmp_path):
    create_v1_database(database)
    config = tmp_path / "config.yaml"
    config.write_text(f'storage: {{url: "{database}"}}\nslack: {{token: xoxb-1}}\nbrands: {{acme: {{names: [Acme], '
                      'slack_channel: "#a", sources: [{type: feed, name: b, url: "https://b.example/f"}]}}\n')
    runner = CliRunner()
    before = runner.invoke(app, ["db", "current", "--config", str(config)])
    assert (before.exit_code, before.output.strip()) == (1, f"database: v1, newest: {head()}")
    upgraded = runner.invoke(app, ["db", "upgrade", "--config", str(config)]).output.strip().splitlines()
    assert f"upgraded the database schema from revision v1 to {head()}" in upgraded[0]
    assert upgraded[-1] == f"database at revision {head()}"
    after = runner.invoke(app, ["db", "current", "--config", str(config)])
    assert (after.exit_code, after.output.strip()) == (0, f"database: {head()}, newest: {head()}")
    assert "v2: Version 2: routing" in runner.invoke(app, ["db", "history"]).output
