"""All reads and writes of mentionwatch's state, each operation one transaction.

The guarantees live here: mentions are inserted idempotently on (source, external_id) in the same
transaction that advances the source's cursor; alerts are written to the outbox in the same
transaction that marks their mention routed. The store is one object over one engine, split by
concern into repositories (one module each); the records it takes and returns live in
`monitor.core.records`, the tables in `monitor.store.schema`.
"""

from __future__ import annotations

from monitor.store.clocks import ClockRepository
from monitor.store.groups import GroupRepository
from monitor.store.leases import LeaseRepository
from monitor.store.mentions import MentionRepository
from monitor.store.ops import OpsRepository
from monitor.store.outbox import OutboxRepository
from monitor.store.polls import PollRepository
from monitor.store.reports import ReportRepository
from monitor.store.retention import RetentionRepository
from monitor.store.routing import RoutingRepository
from monitor.store.trends import TrendRepository


__all__ = ["Store"]


class Store(PollRepository, MentionRepository, RoutingRepository, GroupRepository, OutboxRepository,
            TrendRepository, ClockRepository, ReportRepository, OpsRepository, RetentionRepository,
            LeaseRepository):
    """The store a component is handed: every repository over one engine (`Store(url)` migrates it)."""
