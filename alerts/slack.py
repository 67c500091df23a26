"""Delivering the outbox to Slack exactly once.

Each row is marked `sending` (committed) before the call and `sent` with its ts after. If the
process dies, or the connection drops, between the two, the outcome is unknown: the row is left
`sending` and, before anything else is sent, looked up in the channel's history by the alert id
that travels in the message metadata. Only if it is not there is it sent again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from monitor.config import SlackConfig
from monitor.health import FailureKind, SourceFailure, after_failure, after_success
from monitor.store import AlertRow, Store

log = logging.getLogger("mentionwatch.slack")

METADATA_EVENT = "mentionwatch_alert"
HEALTH_ID = "slack"
# Errors that concern one message, not Slack as a whole: that message is failed, the rest go on.
MESSAGE_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text",
                            "invalid_blocks", "invalid_blocks_format", "too_many_attachments",
                            "invalid_metadata_format", "invalid_metadata_schema", "restricted_action"})
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                         "missing_scope", "no_permission"})
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 in-thread only when Slack asks for a short wait; longer waits pause the sender."""

    def __init__(self, max_retry_count: int, max_wait: float = 5.0):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        values = {k.lower(): v for k, v in response.headers.items()}.get("retry-after", ["1"])
        try:
            return float(values[0]) <= self.max_wait
        except ValueError:
            return False


def make_client(cfg: SlackConfig) -> WebClient:
    # No ConnectionErrorRetryHandler: a dropped connection after Slack got the POST would post twice.
    return WebClient(token=cfg.token.get_secret_value(), base_url=cfg.base_url,
                     timeout=int(cfg.timeout.total_seconds()) or 1,
                     retry_handlers=[ShortRateLimitRetryHandler(cfg.rate_limit_retries)])


@dataclass
class DeliveryReport:
    sent: int = 0
    reconciled: int = 0
    failed: int = 0
    stopped: str | None = None  # why the drain stopped early, if it did


class _Stop(Exception):
    def __init__(self, failure: SourceFailure):
        self.failure = failure


class SlackSender:
    """Drains the outbox in batches: one commit claims a batch, one commit records how it went.

    A crash in between leaves the batch `sending`; the next drain looks those rows up in the
    channel history (one history read per channel) and re-sends only what is not there.
    """

    BATCH = 50

    def __init__(self, client: WebClient, store: Store, clock: Callable[[], datetime]):
        self.client = client
        self.store = store
        self.clock = clock
        self.paused_until: datetime | None = None
        self._channels: dict[str, str] = {}

    def deliver(self, limit: int = 200) -> DeliveryReport:
        """Send pending rows in order; stop at the first failure that is not about one message."""
        report = DeliveryReport()
        if self.paused_until and self.clock() < self.paused_until:
            report.stopped = "paused"
            return report
        try:
            rows = self.store.outbox(limit)
            found = self._reconcile([row for row in rows if row.state == "sending"])
            report.reconciled = len(found)
            todo = [row for row in rows if row.id not in found]
            for start in range(0, len(todo), self.BATCH):
                self._send_batch(todo[start:start + self.BATCH], report)
        except _Stop as stop:
            report.stopped = stop.failure.kind.value
            self._record(stop.failure)
            return report
        if report.sent or report.reconciled:
            self._record(None)
        return report

    def _send_batch(self, batch: list[AlertRow], report: DeliveryReport) -> None:
        self.store.claim([row.id for row in batch], self.clock())
        sent: list[tuple[int, str, str]] = []
        unsent: list[tuple[int, str | None]] = []
        try:
            for i, row in enumerate(batch):
                try:
                    resp = self.client.chat_postMessage(
                        channel=row.channel, text=row.payload["text"], blocks=row.payload.get("blocks"),
                        unfurl_links=False, unfurl_media=False,
                        metadata={"event_type": METADATA_EVENT, "event_payload": {"alert_id": row.id}})
                except SlackApiError as exc:
                    error = str(exc.response.get("error", ""))
                    if error in MESSAGE_ERRORS:
                        self.store.mark_failed(row.id, error)
                        log.error("alert %s to %s failed: %s (will not retry)", row.id, row.channel, error)
                        report.failed += 1
                        continue
                    unsent += [(row.id, error or f"HTTP {exc.response.status_code}")]
                    unsent += [(later.id, None) for later in batch[i + 1:]]
                    raise _Stop(self._classify(exc)) from None
                except (TimeoutError, URLError, OSError) as exc:
                    # This post may or may not have arrived: it stays `sending`, for reconciliation.
                    unsent += [(later.id, None) for later in batch[i + 1:]]
                    raise _Stop(SourceFailure(FailureKind.UNAVAILABLE,
                                              f"Slack unreachable ({type(exc).__name__})")) from None
                self._learn_channel(row.channel, resp["channel"])
                sent.append((row.id, resp["channel"], resp["ts"]))
                report.sent += 1
        finally:
            self.store.settle(sent, unsent, self.clock())

    def _reconcile(self, rows: list[AlertRow]) -> set[int]:
        """Which of these `sending` rows did reach Slack before we lost track? Those are recorded as sent."""
        if not rows:
            return set()
        found: list[tuple[int, str, str]] = []
        try:
            by_channel: dict[str, list[AlertRow]] = {}
            for row in rows:
                by_channel.setdefault(row.channel, []).append(row)
            for channel, channel_rows in by_channel.items():
                channel_id = self._channel_id(channel)
                if channel_id is None:
                    continue
                wanted = {row.id for row in channel_rows}
                oldest = min(row.sending_at or row.created_at for row in channel_rows) - timedelta(minutes=1)
                for message in self._history(channel_id, oldest):
                    meta = message.get("metadata") or {}
                    alert_id = meta.get("event_payload", {}).get("alert_id")
                    if meta.get("event_type") == METADATA_EVENT and alert_id in wanted:
                        found.append((alert_id, channel_id, message["ts"]))
        except SlackApiError as exc:
            raise _Stop(self._classify(exc)) from None
        except (TimeoutError, URLError, OSError) as exc:
            raise _Stop(SourceFailure(FailureKind.UNAVAILABLE, f"Slack unreachable ({type(exc).__name__})")) from None
        finally:
            if found:
                self.store.settle(found, [], self.clock())
                log.info("%d alert(s) were already in Slack; recorded, not resent", len(found))
        return {alert_id for alert_id, _, _ in found}

    def _history(self, channel_id: str, oldest: datetime):
        cursor = None
        while True:
            resp = self.client.conversations_history(channel=channel_id, oldest=f"{oldest.timestamp():.6f}",
                                                     include_all_metadata=True, limit=200, cursor=cursor)
            yield from resp.get("messages", [])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def _learn_channel(self, name: str, channel_id: str) -> None:
        if self._channels.get(name) != channel_id:
            self.store.remember_channel(name, channel_id)
            self._channels[name] = channel_id

    def _channel_id(self, name: str) -> str | None:
        if _CHANNEL_ID.match(name):
            return name
        known = self.store.channel_id(name)
        if known:
            return known
        wanted = name.lstrip("#")
        cursor = None
        while True:
            resp = self.client.conversations_list(limit=1000, cursor=cursor, exclude_archived=True,
                                                  types="public_channel,private_channel")
            for channel in resp.get("channels", []):
                if channel.get("name") == wanted:
                    self.store.remember_channel(name, channel["id"])
                    return channel["id"]
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    def _classify(self, exc: SlackApiError) -> SourceFailure:
        error = str(exc.response.get("error", ""))
        status = exc.response.status_code
        if status == 429 or error in RATE_LIMIT_ERRORS:
            headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
            value = headers.get("retry-after", "30")
            wait = float(value[0] if isinstance(value, list) else value)
            self.paused_until = self.clock() + timedelta(seconds=wait)
            return SourceFailure(FailureKind.RATE_LIMITED, f"Slack rate limit, retry after {wait:.0f} s", wait)
        if error in AUTH_ERRORS:
            return SourceFailure(FailureKind.AUTH, f"Slack refused the token ({error})")
        return SourceFailure(FailureKind.UNAVAILABLE, f"Slack error: {error or 'HTTP ' + str(status)}")

    def _record(self, failure: SourceFailure | None) -> None:
        prev = self.store.get_health(HEALTH_ID)
        now = self.clock()
        if failure is None and prev.state == "ok" and prev.last_success_at and \
                now - prev.last_success_at < timedelta(minutes=1):
            return  # healthy and recently recorded: spare a commit per drain
        if failure is None:
            health, transition = after_success(prev, now)
        else:
            health, transition = after_failure(prev, failure, timedelta(seconds=30), now)
        if transition == "recovered":
            log.warning("Slack delivery recovered")
        elif transition:
            log.error("Slack delivery failing: %s; alerts stay queued and go out in order on recovery",
                      failure.message)
        self.store.save_health(health)

