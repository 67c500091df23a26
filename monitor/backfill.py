"""The backfill stage: a brand's backlog (what a first run, or the first poll after a long outage, stored)
becomes one summary message with the unanswered mentions listed in its thread.

The pipeline marks such mentions `extra["backfill"]` when it stores them; routing leaves them alone.
Once they are labelled and the brand's sources have found no more backlog for `daemon.backfill_wait`
(so a first run's sources, polled a few seconds apart, make one summary), the whole backlog of the
brand is summarised in one transaction: the messages, a `backfill` notification per listed mention,
and a `backlog` reply clock for each that needs a reply, which shows overdue but never pages.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from alerts.backfill import BacklogItem, backfill_messages
from monitor.config import Settings
from monitor.store import Store
from monitor.tracker import needs_reply, new_clock
from monitor.core.logs import get_logger

log = get_logger(__name__)


class Backfill:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store

    def run(self, now: datetime, force: bool = False) -> int:
        """Summarise each brand whose backlog is complete; `force` (run --once) does not wait. Returns
        the number of brands summarised."""
        by_brand: dict[str, list] = defaultdict(list)
        for mention, labels, answered in self.store.backfill_pending():
            by_brand[mention.brand].append((mention, labels, answered))
        done = 0
        wait = self.settings.daemon.backfill_wait
        for brand_id, rows in by_brand.items():
            brand = self.settings.brands.get(brand_id)
            if brand is None or any(labels is None for _, labels, _ in rows):
                continue  # a brand gone from the config, or still being labelled
            if not force and max(m.fetched_at for m, _, _ in rows) > now - wait:
                continue  # its sources may still be finding backlog
            done += self._summarise(brand_id, rows, now)
        return done

    def _summarise(self, brand_id: str, rows: list, now: datetime) -> int:
        brand = self.settings.brands[brand_id]
        unanswered, clocks = [], []
        for mention, labels, answered in rows:
            if answered or not needs_reply(mention, labels):
                continue
            clock = new_clock(self.settings, brand_id, mention, labels.intent, now)
            if clock is not None:
                clocks.append(replace(clock, state="backlog", remind_at=None))
            unanswered.append(BacklogItem(mention, labels, clock.deadline if clock else None))
        oldest = min(m.created_at or m.fetched_at for m, _, _ in rows)
        ids = [m.id for m, _, _ in rows]
        channel = self.settings.routes.channel or brand.slack_channel
        messages = backfill_messages(brand_id, brand.names[0], channel, len(rows),
                                     sum(1 for _, _, answered in rows if answered), unanswered, oldest, now,
                                     key=f"{brand_id}:{min(ids)}")
        if not self.store.commit_backfill(brand_id, ids, messages, clocks, now):
            return 0
        log.info("brand %s: backfilled %d mention(s), %d unanswered listed in one summary", brand_id, len(rows),
                 len(unanswered))
        return 1
