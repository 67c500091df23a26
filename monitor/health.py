"""Source health as a small state machine, so a source that fails 100 times logs twice.

`after_success` / `after_failure` are pure: they take the previous state and `now` and return
the next state plus the transition worth telling a person about (or None).
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.logs import redact

MIN_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 24 * 3600.0  # a server asking for longer (or for year 5195) is not taken at its word


def clamp_retry_after(seconds: float | None) -> float | None:
    """A wait a platform asked for, within 1 s .. 24 h; None when it named none (or NaN)."""
    if seconds is None or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return None
    return min(max(float(seconds), MIN_RETRY_AFTER), MAX_RETRY_AFTER)


class FailureKind(str, enum.Enum):
    UNAVAILABLE = "unavailable"    # network, timeout, 5xx: weather, retry with backoff
    RATE_LIMITED = "rate_limited"  # 429 / 503 with Retry-After: wait as told
    GONE = "gone"                  # 404 / 410: the URL is wrong or dead, a person must look
    BAD_PAYLOAD = "bad_payload"    # unparseable or oversized body
    AUTH = "auth"                  # 401 / 403: credentials or access level


class SourceFailure(Exception):
    """What a connector raises for any failure of a poll, already classified. The message is
    redacted here, so no secret reaches the log, the health row or Slack through it."""

    def __init__(self, kind: FailureKind, message: str, retry_after: float | None = None, disable: bool = False):
        message = redact(str(message))
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = clamp_retry_after(retry_after)
        self.disable = disable  # credentials the platform rejects after its own retries: stop polling


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


def backoff(interval: timedelta, failures: int, rng: random.Random = random._inst) -> timedelta:
    """Exponential in consecutive failures, capped, with +-20 % jitter against thundering herds."""
    base = min(interval * (2 ** max(failures - 1, 0)), max(interval, MAX_BACKOFF))
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
