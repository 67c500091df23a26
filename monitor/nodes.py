"""Several `mentionwatch run` nodes on one PostgreSQL: who polls which source, and who runs the process job.

Every node schedules every job (APScheduler's job stores are never shared); before running one it takes
the job's lease in the database. A source's lease lasts a little over its interval and is renewed by each
poll, so a node killed with `kill -9` has its sources taken over within about two intervals. The process
job (classify, route, reply clock, digest, spikes, send) has one leader; the Slack sender renews the
lease before each message and stops when it is lost, so two nodes never send side by side. The other
nodes label meanwhile (rows locked with SKIP LOCKED, monitor.store.mentions.label_pending). On SQLite
there is one node (monitor.store.exclusive) and every lease is granted without asking the database.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from monitor.core.logs import get_logger
from monitor.store import Store

log = get_logger(__name__)
PROCESS_LEASE = "process"
MARGIN = timedelta(seconds=2)


def node_name() -> str:
    """Unique per process, readable in the leases table: host, pid and a random suffix."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def poll_ttl(interval: timedelta, jitter: float) -> timedelta:
    """Outlives the holder's next poll (interval plus its jitter), no longer: a dead holder's source waits
    at most this long, plus one interval of the next node's schedule."""
    return interval * (1 + jitter) + MARGIN


def process_ttl(process_interval: timedelta, slack_timeout: timedelta) -> timedelta:
    """Outlives one Slack call (the sender renews before each) and a few process intervals."""
    return max(3 * process_interval, 2 * slack_timeout) + MARGIN


class NodeLeases:
    """This node's leases: `hold` says whether to run a job now, and logs when that changes."""

    def __init__(self, store: Store, node: str | None = None):
        self.store = store
        self.node = node or node_name()
        self.shared = store.engine.dialect.name != "sqlite"
        self._held: set[str] = set()

    def hold(self, name: str, ttl: timedelta, now: datetime) -> bool:
        if not self.shared:
            return True
        held = self.store.take_lease(name, self.node, now, ttl) is not None
        if held and name not in self._held:
            log.info("node %s now runs %s", self.node, name)
            self._held.add(name)
        elif not held and name in self._held:
            log.warning("node %s lost %s to another node", self.node, name)
            self._held.discard(name)
        return held

    def release(self) -> None:
        if self.shared and self._held:
            self.store.drop_leases(self.node)
            self._held.clear()
