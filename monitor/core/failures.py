"""How a poll fails: one classified exception every connector raises, so health, status and the
daemon's retry timing never have to guess."""

from __future__ import annotations

import enum
import math

from monitor.core.logs import redact


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
