"""Creating and upgrading the schema with Alembic, under a lock, so any number of simultaneous starts agree.

A start that finds the database at the newest revision does one query and takes no lock. Otherwise it
takes the lock (PostgreSQL: a transaction-scoped advisory lock; SQLite: a lock file beside the database),
looks again, and creates, stamps or upgrades: whoever waited finds the work done.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Column, Integer, MetaData, Table, select, text
from sqlalchemy.engine import Connection, Engine

from monitor.core.logs import get_logger
from monitor.store import schema

log = get_logger(__name__)
# Alembic narrates every start at INFO ("Context impl …"); what changed is logged below, once.
logging.getLogger("alembic").setLevel(logging.WARNING)

SCRIPTS = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number: the advisory lock every mentionwatch process migrating one PostgreSQL database shares.
ADVISORY_LOCK_KEY = 0x6D656E74696F6E  # "mention"
# The version table of databases made before Alembic (one row, 1..6); read to stamp them, never written.
_legacy = Table("schema_version", MetaData(), Column("version", Integer, nullable=False))


class SchemaTooNew(RuntimeError):
    pass


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    return _scripts().get_current_head()


def revisions() -> list[tuple[str, str]]:
    """(revision, first line of its docstring), oldest first."""
    return [(script.revision, script.doc) for script in reversed(list(_scripts().walk_revisions()))]


def current_revision(conn: Connection) -> str | None:
    """The database's revision: Alembic's, else `vN` from a pre-Alembic `schema_version`; None when empty."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None and conn.dialect.has_table(conn, "schema_version"):
        version = conn.execute(select(_legacy.c.version)).scalar()
        return None if version is None else f"v{version}"
    return revision


def migrate(engine: Engine, target: str = "head") -> str:
    """Create, stamp or upgrade the schema to `target`; returns the revision now in place."""
    newest = head() if target == "head" else target
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == newest:
            return newest
    with _locked(engine) as conn:
        revision = current_revision(conn)
        known = {script.revision for script in _scripts().walk_revisions()}
        if revision is not None and revision not in known:
            raise SchemaTooNew(f"the database has schema revision {revision}, this mentionwatch knows up to "
                               f"{head()}: upgrade mentionwatch instead of downgrading the database")
        config = alembic_config()
        config.attributes["connection"] = conn
        if revision is None and target == "head":
            schema.metadata.create_all(conn)
            command.stamp(config, "head")
            log.debug("created the database schema at revision %s", newest)
            return newest
        if MigrationContext.configure(conn).get_current_revision() is None and revision is not None:
            command.stamp(config, revision)  # a pre-Alembic database: where its schema_version says it is
        if revision != newest:
            command.upgrade(config, target)
            log.info("upgraded the database schema from revision %s to %s", revision or "empty", newest)
        return newest


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """One transaction on one connection, held by one process at a time per database."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            yield conn
        return
    database = engine.url.database
    if not database or database == ":memory:":
        with engine.begin() as conn:
            yield conn
        return
    with FileLock(f"{database}.migrate-lock", timeout=600), engine.begin() as conn:
        yield conn
