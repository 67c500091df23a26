"""Databases as an older release left them, for the upgrade tests."""

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from monitor.store import schema

V1_SQL = Path(__file__).resolve().parent.parent / "data" / "schema_v1.sql"


def version_4_sqlite(path: Path) -> None:
    """A SQLite file at schema version 4: the v1 snapshot brought forward by the steps a v4 install ran."""
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SQL.read_text())
        conn.execute("INSERT INTO schema_version VALUES (1)")
    engine = create_engine(f"sqlite:///{path}")
    for number, _, step in schema.MIGRATIONS[1:4]:
        with engine.begin() as conn:
            step(conn)
            conn.execute(schema.schema_version.update().values(version=number))
    engine.dispose()
