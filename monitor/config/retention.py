"""`retention:`: how long each kind of stored row is kept before the prune job deletes it.

Counts that reports need live on in the daily rollup (`mention_daily`), so pruning mentions loses
their text, labels and alert history, not the figures. What is still in use is never pruned (see
`monitor.store.retention`). Cutoffs are a pure function of the policy and the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

from monitor.configbase import Duration, Interval, Strict


def at_least(minimum: timedelta, why: str):
    """A duration no shorter than `minimum`: a shorter one would prune rows the daemon still reads."""
    def check(value: timedelta) -> timedelta:
        if value < minimum:
            raise ValueError(f"expected at least {minimum.days}d: {why}")
        return value
    return AfterValidator(check)


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these moments may go."""

    mentions: datetime
    outbox: datetime
    digest_images: datetime
    slack_events: datetime
    history: datetime


class RetentionConfig(Strict):
    enabled: bool = Field(True, description="Whether `run` prunes (every `every`); `mentionwatch prune` works anyway")
    every: Interval = Field(timedelta(hours=1), description="How often the daemon prunes")
    batch_size: int = Field(500, ge=1, le=10000, description="Rows deleted per transaction")
    mentions: Annotated[Duration, at_least(timedelta(days=28), "spike baselines, reply clocks and cross-posts read "
                                           "the last weeks' mentions")] = Field(
        timedelta(days=365), description="Mention text, labels, notifications, team replies and closed reply clocks, "
                                         "from when the mention was stored; report figures are kept regardless")
    outbox: Annotated[Duration, at_least(timedelta(days=1), "threads and updates refer to recent messages")] = Field(
        timedelta(days=30), description="Sent (or failed) outbox rows with their payloads, and the group log")
    digest_images: Annotated[Duration, at_least(timedelta(days=1), "a digest is queued for a day at most")] = Field(
        timedelta(weeks=12), description="Sent weekly digest uploads (their PNG charts)")
    slack_events: Annotated[Duration, at_least(timedelta(days=1), "Slack redelivers events for hours")] = Field(
        timedelta(days=7), description="Keys of Slack events and button presses already acted on")
    history: Annotated[Duration, at_least(timedelta(days=1), "status shows recent gaps")] = Field(
        timedelta(days=90), description="Coverage gaps, ended silences and ended spikes")

    def cutoffs(self, now: datetime) -> Cutoffs:
        return Cutoffs(mentions=now - self.mentions, outbox=now - self.outbox, digest_images=now - self.digest_images,
                       slack_events=now - self.slack_events, history=now - self.history)
