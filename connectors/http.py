"""HTTP fetching shared by the connectors that speak plain HTTP: bounded in time and size,
with one classification of status codes into failure kinds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import requests

from monitor.health import FailureKind, SourceFailure


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: requests.structures.CaseInsensitiveDict
    url: str


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)


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


def get(session: requests.Session, url: str, *, headers: dict, connect_timeout: float, read_timeout: float,
        max_bytes: int, what: str, params: dict | None = None) -> HttpResponse:
    """GET with a connect/read timeout, a total deadline and a cap on decompressed bytes.

    Every failure comes back as a classified SourceFailure; 2xx and 304 come back as responses.
    """
    deadline = time.monotonic() + connect_timeout + 2 * read_timeout
    try:
        with session.get(url, headers=headers, params=params, timeout=(connect_timeout, read_timeout),
                         stream=True, allow_redirects=True) as resp:
            if resp.status_code == 304:
                return HttpResponse(304, b"", resp.headers, resp.url)
            if resp.status_code >= 300:
                raise failure_for_status(resp.status_code, resp.headers, what)
            body = bytearray()
            for chunk in resp.iter_content(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise SourceFailure(FailureKind.BAD_PAYLOAD, f"{what}: body larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise SourceFailure(FailureKind.UNAVAILABLE, f"{what}: download took too long")
            return HttpResponse(resp.status_code, bytes(body), resp.headers, resp.url)
    except requests.RequestException as exc:
        raise network_failure(exc, what) from None


def network_failure(exc: requests.RequestException, what: str) -> SourceFailure:
    """What a requests exception means for a source: always weather, never a reason to give up."""
    if isinstance(exc, requests.Timeout):
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: timed out")
    if isinstance(exc, requests.ConnectionError):
        return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: connection failed ({type(exc).__name__})")
    return SourceFailure(FailureKind.UNAVAILABLE, f"{what}: {type(exc).__name__}")
