"""Databases as an older release left them, for the upgrade tests."""

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from monitor.store.migrate import migrate

V1_SQL = Path(__file__).resolve().parent.parent / "data" / "schema_v1.sql"


def legacy_sqlite(path: Path, version: int) -> None:
    """A SQLite file as a release before Alembic left it at schema `version` (1..6): the v1 snapshot brought
    forward by the same steps, recorded only in its `schema_version` table."""
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SQL.read_text())
        conn.execute("INSERT INTO schema_version VALUES (1)")
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine, f"v{version}")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql(f"UPDATE schema_version SET version = {version}")
    engine.dispose()

