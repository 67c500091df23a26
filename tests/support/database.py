"""The backends storage tests run on: SQLite always, PostgreSQL when MENTIONWATCH_TEST_DATABASE_URL names a server.

Each PostgreSQL test gets a database of its own (CREATE DATABASE, dropped after), so tests never see each
other's rows and ids start at 1 as on a fresh SQLite file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

SERVER_URL = os.environ.get("MENTIONWATCH_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if SERVER_URL else [])]


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mw.db'}"


class PostgresDatabases:
    """Creates and drops throwaway databases on the test server."""

    def __init__(self, server_url: str):
        self.server = make_url(server_url)
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT", pool_size=1)

    def create(self) -> str:
        name = f"mw_{uuid.uuid4().hex[:16]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return self.server.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self.admin.dispose()


def create_v1_database(url: str) -> None:
    """An empty version 1 database as mentionwatch 0.1 left it (schema_version = 1), on either backend."""
    engine = create_engine(url)
    name = "schema_v1.postgresql.sql" if engine.dialect.name == "postgresql" else "schema_v1.sql"
    script = (Path(__file__).resolve().parent.parent / "data" / name).read_text()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.connection.driver_connection.executescript(script)
        else:
            conn.exec_driver_sql(script)
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (1)")
    engine.dispose()


def v1_database_with_a_mention(url: str, fetched_at) -> Engine:
    """A version 1 database holding one mention (external id x1, text "kept"); its engine, for more rows."""
    create_v1_database(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO mentions (source, external_id, source_id, brand, matched, text, fetched_at, "
                          "extra) VALUES ('feed', 'x1', 'acme/a', 'acme', '{\"acme\": []}', 'kept', :at, '{}')"),
                     {"at": fetched_at})
    return engine
