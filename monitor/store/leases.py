"""Leases: one node at a time does a shared job (polls a source, runs the process job) on one database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_

from monitor.store import schema as t
from monitor.store.base import Repository


class LeaseRepository(Repository):
    """Take, renew and drop leases; each is one statement, so two nodes racing for one never both win."""

    def take_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> int | None:
        """Take or renew `name` for `ttl`: its fencing token if `owner` now holds it, None if another node does.

        A lease is free when nobody took it yet, or its holder let it expire (stopped renewing: it died)."""
        row = t.leases.c
        stmt = self._dialect.insert(t.leases).values(name=name, owner=owner, token=1, expires_at=now + ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": owner, "expires_at": now + ttl,
                  "token": case((row.owner == owner, row.token), else_=row.token + 1)},
            where=or_(row.owner == owner, row.expires_at <= now)).returning(row.token)
        with self.engine.begin() as conn:
            return conn.execute(stmt).scalar()

    def drop_leases(self, owner: str) -> None:
        """A node that stops cleanly hands its work over at once instead of when its leases expire."""
        with self.engine.begin() as conn:
            conn.execute(delete(t.leases).where(t.leases.c.owner == owner))
