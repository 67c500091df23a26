"""One process sends from a SQLite file: a second `run` (or `run --once` from cron) beside a daemon is refused.

SQLite has no way for two processes to share the outbox safely (a `sending` row left by a live
process would look like one a crash left), so the daemon holds an OS lock on `<database>.daemon-lock`
for its whole life. The kernel drops the lock when the process dies, `kill -9` included, so a restart
never finds a stale one. PostgreSQL needs no such lock: its nodes share the work.
"""

from __future__ import annotations

from filelock import FileLock, Timeout
from sqlalchemy.engine import make_url


class DatabaseBusy(RuntimeError):
    """Another mentionwatch process is running on this SQLite file."""


def hold_database(url: str) -> FileLock | None:
    """Take the file's daemon lock (None for PostgreSQL and in-memory SQLite); release() it when done."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    lock = FileLock(f"{parsed.database}.daemon-lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DatabaseBusy(f"another mentionwatch is already running on {parsed.database} (it holds "
                           f"{lock.lock_file}): SQLite allows one daemon per file. Stop it first, or move "
                           "storage.url to PostgreSQL to run several nodes") from None
    return lock
