"""Source health as a small state machine, so a source that fails 100 times logs twice.

`after_success` / `after_failure` are pure: they take the previous state and `now` and return
the next state plus the transition worth telling a person about (or None).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.core.failures import FailureKind, SourceFailure, clamp_retry_after


CLASSIFIER_HEALTH_ID = "classifier"  # the row where the daemon records its classifier, for `status`


@dataclass(frozen=True)
class SourceHealth:
    source_id: str
    state: str = "ok"  # ok | failing | disabled (auth kept failing; tried again after a reload or restart)
    kind: str | None = None
    message: str | None = None
    since: datetime | None = None
    failures: int = 0
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    retry_at: datetime | None = None


MAX_BACKOFF = timedelta(hours=1)


def backoff(interval: timedelta, failures: int, rng: random.Random = random._inst,
            cap: timedelta = MAX_BACKOFF) -> timedelta:
    """Exponential in consecutive failures, capped, with +-20 % jitter against thundering herds."""
    base = min(interval * 2 ** min(max(failures - 1, 0), 20), max(interval, cap))  # 2**20: past any cap
    return base * rng.uniform(0.8, 1.2)


def after_success(prev: SourceHealth, now: datetime) -> tuple[SourceHealth, str | None]:
    transition = "recovered" if prev.state != "ok" else None
    return SourceHealth(prev.source_id, "ok", None, None, now if transition else prev.since, 0, now, now,
                        None), transition


def after_failure(prev: SourceHealth, failure: SourceFailure, interval: timedelta,
                  now: datetime) -> tuple[SourceHealth, str | None]:
    failures = prev.failures + 1
    if failure.kind is FailureKind.RATE_LIMITED and failure.retry_after is not None:
        retry_at = now + timedelta(seconds=clamp_retry_after(failure.retry_after))
    else:
        retry_at = now + backoff(interval, failures) if failures > 1 else None
    disable = failure.disable
    state = "disabled" if disable else "failing"
    if prev.state == "ok":
        transition = "broke"
    elif disable and prev.state != "disabled":
        transition = "disabled"
    elif prev.kind != failure.kind.value:
        transition = "changed"
    else:
        transition = None
    since = now if transition in ("broke", "changed") else prev.since
    return replace(prev, state=state, kind=failure.kind.value, message=failure.message, since=since,
                   failures=failures, last_attempt_at=now, retry_at=None if disable else retry_at), transition
