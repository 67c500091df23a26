"""The webhook receiver plug-in: its config (`WebhookReceiver`), its rendering of the neutral message
(`webhook_json`), its sender, and its registry entry (`PLUGIN`).

Delivery is at least once, with a key that makes it exactly once for a receiver that remembers keys.

A webhook cannot be read back the way a Slack channel can, so a row whose outcome is unknown (a crash
or a dropped connection after the POST left) is sent again, with the same `Idempotency-Key` and the
same signed body; the receiver drops a key it has seen. Each row is claimed (`sending`, committed)
before its POST and settled after it. A 429 or 5xx leaves the row pending and pauses that receiver
(its `Retry-After`, clamped to 1 s .. 24 h, else exponential backoff with jitter); a 4xx fails the row
for good. Rows go out in order per receiver; one receiver's trouble never holds up another's, nor
Slack's (the Slack sender reads only Slack rows).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Literal

import requests
from pydantic import Field, SecretStr, field_validator

from alerts.messages import neutralise, truncate
from alerts.receivers import DeliveryReport, Receiver
from connectors.http import retry_after_seconds
from connectors.transport import BoundedSession
from monitor.configbase import Duration, Strict
from monitor.core.failures import FailureKind, SourceFailure
from monitor.core.logs import get_logger
from monitor.core.messages import Message, MessageEntry
from monitor.core.records import AlertRow
from monitor.health import after_failure, after_success
from monitor.store import Store

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Mentionwatch-Signature"
KEY_HEADER = "Idempotency-Key"
FIRST_BACKOFF = timedelta(seconds=5)
MAX_ANSWER_BYTES = 64 * 1024
RETRY_STATUSES = frozenset({408, 425, 429})
TEXT_CHARS = 1000
TITLE_CHARS = 300
AUTHOR_CHARS = 200


class WebhookReceiver(Strict):
    """POSTs each message as JSON, signed with HMAC-SHA256 of the body, with an idempotency key."""

    type: Literal["webhook"]
    url: str = Field(description="http(s) URL the JSON message is POSTed to")
    secret: SecretStr = Field(description="HMAC-SHA256 key for X-Mentionwatch-Signature, from ${VAR}")
    timeout: Duration = Field(timedelta(seconds=10), description="Whole-request deadline")
    max_backoff: Duration = Field(timedelta(minutes=10), description="Longest wait between retries")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return url

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < 16:
            raise ValueError("a secret of at least 16 characters")
        return secret


def _clean(text: str | None, limit: int) -> str | None:
    return truncate(neutralise(text), limit) if text is not None else None


def _shown(item: MessageEntry) -> MessageEntry:
    """A stranger's texts as a webhook gets them: control and invisible characters removed, one line,
    cut; not escaped (the receiver escapes for wherever it shows them)."""
    return replace(item, text=_clean(item.text, TEXT_CHARS) or "", title=_clean(item.title, TITLE_CHARS),
                   author=_clean(item.author, AUTHOR_CHARS), held_by=_clean(item.held_by, TITLE_CHARS))


def webhook_json(message: Message) -> dict[str, Any]:
    """The webhook receiver's rendering: the message as JSON, strangers' texts cleaned and cut."""
    return replace(message, summary=neutralise(message.summary),
                   items=tuple(_shown(i) for i in message.items)).to_json()




def idempotency_key(row: AlertRow) -> str:
    """Stable for the row: its id plus a hash of its dedupe key (which no retry changes)."""
    return f"mw-{row.id}-{hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:16]}"


def body_of(row: AlertRow, receiver: str) -> bytes:
    """The JSON a receiver gets: the neutral message, rendered now, plus the row's key and time. The same
    bytes on every attempt, so a retry carries the same signature."""
    message = Message.from_json(row.payload)
    envelope = {"id": idempotency_key(row), "receiver": receiver, "created_at": row.created_at.isoformat(),
                "message": webhook_json(message)}
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def health_id(name: str) -> str:
    return f"receiver:{name}"


class WebhookSender:
    """Drains every webhook receiver's rows; `deliver` never sleeps (a paused receiver waits for a later
    drain), so the daemon's threads are never held."""

    def __init__(self, receivers: dict[str, WebhookReceiver], store: Store, clock: Callable[[], datetime],
                 rng: random.Random | None = None):
        self.receivers = receivers
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        # Each receiver's pause (Retry-After or backoff) is its stored health's retry_at: a restart keeps it.
        self.paused_until: dict[str, datetime] = {
            name: retry for name in receivers if (retry := store.get_health(health_id(name)).retry_at) is not None}
        self._sessions: dict[str, BoundedSession] = {}
        self.still_leader: Callable[[], bool] = lambda: True

    def deliver(self, limit: int = 200) -> DeliveryReport:
        report = DeliveryReport()
        done: set[str] = set()  # receivers whose turn in this drain is over (paused or failing)
        for row in self.store.outbox(limit, receivers=sorted(self.receivers)):
            name = row.receiver
            if name in done:
                report.held += 1
                continue
            if row.format != "neutral":
                why = f"a {row.format} row for a webhook"
                self.store.mark_failed(row.id, why)
                log.error("alert %s to %s failed: %s (will not retry)", row.id, name, why,
                          extra={"mention_id": row.mention_id})
                report.failed += 1
                continue
            now = self.clock()
            if now < self.paused_until.get(name, now):
                done.add(name)
                report.held += 1
                continue
            if not self.still_leader():
                break  # another node sends now; what is left is its
            outcome = self._send(row, name, self.receivers[name])
            if outcome == "sent":
                report.sent += 1
            elif outcome == "failed":
                report.failed += 1
            elif outcome == "retry":
                done.add(name)
        return report

    def _send(self, row: AlertRow, name: str, cfg: WebhookReceiver) -> str:
        """One POST: `sent`, `failed` (for good), `retry` (the receiver pauses), or `taken` (another process has it)."""
        try:
            body = body_of(row, name)
        except (KeyError, TypeError, ValueError) as exc:
            self.store.mark_failed(row.id, f"not a neutral message ({type(exc).__name__})")
            return "failed"
        headers = {"Content-Type": "application/json", "User-Agent": "mentionwatch",
                   KEY_HEADER: idempotency_key(row), SIGNATURE_HEADER: signature(cfg.secret.get_secret_value(), body)}
        claimed_at = self.clock()
        if not self.store.claim([row], claimed_at):
            return "taken"  # another process claimed it first, and sends it
        try:
            answer = self._session(name, cfg).post(cfg.url, data=body, headers=headers, allow_redirects=False)
        except (requests.RequestException, OSError) as exc:
            # It may have arrived: left `sending`, and sent again with the same key next time.
            self._trouble(name, cfg, SourceFailure(FailureKind.UNAVAILABLE,
                                                   f"webhook {name} unreachable ({type(exc).__name__})"))
            return "retry"
        status = answer.status_code
        if 200 <= status < 300:
            self.store.settle_one(row.id, True, None, self.clock(), claimed_at)
            self._healthy(name)
            return "sent"
        if status in RETRY_STATUSES or status >= 500:
            wait = retry_after_seconds(answer.headers.get("Retry-After"), self.clock())
            kind = FailureKind.RATE_LIMITED if status == 429 or wait is not None else FailureKind.UNAVAILABLE
            self.store.settle_one(row.id, False, f"HTTP {status}", self.clock(), claimed_at)
            self._trouble(name, cfg, SourceFailure(kind, f"webhook {name} answered HTTP {status}", wait))
            return "retry"
        self.store.mark_failed(row.id, f"HTTP {status}")
        log.error("alert %s to webhook %s refused with HTTP %d (will not retry)", row.id, name, status,
                  extra={"mention_id": row.mention_id})
        return "failed"

    def _session(self, name: str, cfg: WebhookReceiver) -> BoundedSession:
        if name not in self._sessions:
            seconds = max(cfg.timeout.total_seconds(), 1.0)
            self._sessions[name] = BoundedSession(timeout=(min(5.0, seconds), seconds), deadline=seconds,
                                                  max_bytes=MAX_ANSWER_BYTES)
        return self._sessions[name]

    def _trouble(self, name: str, cfg: WebhookReceiver, failure: SourceFailure) -> None:
        """Pause the receiver: as long as it asked (clamped), else exponential backoff with jitter."""
        now = self.clock()
        health, transition = after_failure(self.store.get_health(health_id(name)), failure, FIRST_BACKOFF, now)
        if failure.retry_after is not None:
            wait = timedelta(seconds=failure.retry_after)
        else:
            wait = min(FIRST_BACKOFF * 2 ** (health.failures - 1), cfg.max_backoff) * self.rng.uniform(0.8, 1.2)
        self.paused_until[name] = now + wait
        self.store.save_health(replace(health, retry_at=now + wait))
        if transition:
            log.error("webhook %s failing: %s; its alerts stay queued and go out in order on recovery",
                      name, failure.message)

    def _healthy(self, name: str) -> None:
        self.paused_until.pop(name, None)
        prev = self.store.get_health(health_id(name))
        if prev.state == "ok" and prev.last_success_at is not None:
            return
        health, transition = after_success(prev, self.clock())
        self.store.save_health(health)
        if transition == "recovered":
            log.warning("webhook %s delivery recovered", name)


# No threads, no edits, no read-back: one message per group per group_interval, re-sent under its key.
PLUGIN = Receiver(type="webhook", config=WebhookReceiver, sender=WebhookSender)
