"""HTTP fetching shared by the connectors that speak plain HTTP: bounded in time and size,
with one classification of status codes into failure kinds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import requests

from connectors.transport import BodyTooLarge, BoundedSession, DeadlineExceeded, TooDeeplyNested
from monitor.core.failures import FailureKind, SourceFailure, clamp_retry_after


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: requests.structures.CaseInsensitiveDict
    url: str


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds, in either RFC 9110 form (delay-seconds or an HTTP-date), clamped to
    1 s .. 24 h; None when absent or unreadable (NaN included)."""
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    try:
        return clamp_retry_after(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return clamp_retry_after((when - now).total_seconds())


def failure_for_status(status: int, headers, what: str) -> SourceFailure:
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429 or (status == 503 and retry_after is not None):
        return SourceFailure(FailureKind.RATE_LIMITED, f"{what}: HTTP {status}, retry after "
                             f"{retry_after if retry_after is not None else 'unknown'} s", retry_after)
    if status in (401, 403):
        return SourceFailure(FailureKind.AUTH, f"{what}: HTTP {status} (access denied)")
    if status in (404, 410):
        return SourceFailure(FailureKind.GONE, f"{what}: HTTP {status} (check the URL in the config)")
    return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: HTTP {status}")


def deadline_for(connect_timeout: float, read_timeout: float) -> float:
    """The total time one request may take, whatever the server does: connecting, then two read timeouts."""
    return connect_timeout + 2 * read_timeout


def bounded_session(connect_timeout: float, read_timeout: float, max_bytes: int) -> BoundedSession:
    return BoundedSession(timeout=(connect_timeout, read_timeout),
                          deadline=deadline_for(connect_timeout, read_timeout), max_bytes=max_bytes)


def get(session: requests.Session | None, url: str, *, headers: dict, connect_timeout: float, read_timeout: float,
        max_bytes: int, what: str, params: dict | None = None, answers: tuple[int, ...] = ()) -> HttpResponse:
    """GET with a connect/read timeout, a total deadline and a cap on bytes (compressed and inflated).

    Every failure comes back as a classified SourceFailure; 2xx, 304 and the statuses in `answers` (a 429
    whose headers the caller reads, say) come back as responses.
    A session that is not a `BoundedSession` is replaced by one with these bounds.
    """
    if not isinstance(session, BoundedSession):
        session = bounded_session(connect_timeout, read_timeout, max_bytes)
    try:
        resp = session.get(url, headers=headers, params=params, timeout=(connect_timeout, read_timeout),
                           allow_redirects=True)
    except requests.RequestException as exc:
        raise network_failure(exc, what) from None
    if resp.status_code == 304:
        return HttpResponse(304, b"", resp.headers, resp.url)
    if resp.status_code >= 300 and resp.status_code not in answers:
        raise failure_for_status(resp.status_code, resp.headers, what)
    return HttpResponse(resp.status_code, resp.content, resp.headers, resp.url)


def network_failure(exc: requests.RequestException, what: str) -> SourceFailure:
    """What a requests exception means for a source: weather (retry later), or a body we refuse."""
    if isinstance(exc, BodyTooLarge):
        return SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: {exc}")
    if isinstance(exc, TooDeeplyNested):
        return SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: {exc}")
    if isinstance(exc, DeadlineExceeded):
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: download took too long ({exc})")
    if isinstance(exc, requests.Timeout):
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: timed out")
    if isinstance(exc, requests.ConnectionError):
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: connection failed ({type(exc).__name__})")
    return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: {type(exc).__name__}")
