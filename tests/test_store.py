"""Storage guarantees: idempotent inserts, atomic cursor advance, upgrades that keep data."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from monitor.store import schema
from monitor.core.records import Match, Post
from monitor.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
MATCH = Match({"acme": ["Acme"]})


def posts(*ids: str) -> list[tuple[Post, Match]]:
    return [(Post("feed", i, f"Acme post {i}"), MATCH) for i in ids]


def test_the_same_post_is_stored_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    assert len(store.commit_poll("acme/a", posts("1", "2"), {"n": 1}, Counter(), NOW)) == 2
    assert store.commit_poll("acme/b", posts("2", "3"), {"n": 2}, Counter(), NOW) == [3]
    assert [mid for mid, _ in store.unclassified(10)] == [1, 2, 3]


def test_cursor_advances_only_with_its_mentions(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
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


def test_upgrading_a_version_1_database_keeps_its_data(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript((Path(__file__).parent / "data" / "schema_v1.sql").read_text())
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute("INSERT INTO mentions (source, external_id, source_id, brand, matched, text, fetched_at, extra) "
                     "VALUES ('feed', 'x1', 'acme/a', 'acme', '{\"acme\": []}', 'kept', '2026-01-01 00:00:00', '{}')")
        conn.execute("INSERT INTO cursors VALUES ('acme/a', '{\"etag\": \"e\"}', '2026-01-01 00:00:00')")
    store = Store(f"sqlite:///{path}")
    assert store.unclassified(5) == [(1, "kept")]
    assert store.get_cursor("acme/a") == {"etag": "e"}
    with store.engine.connect() as conn:
        assert schema.current_version(conn) == schema.LATEST


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'mw.db'}"
    Store(url).close()
    with sqlite3.connect(tmp_path / "mw.db") as conn:
        conn.execute("UPDATE schema_version SET version = ?", (schema.LATEST + 1,))
    with pytest.raises(schema.SchemaTooNew, match="upgrade mentionwatch"):
        Store(url)
