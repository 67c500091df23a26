"""Delivering the outbox to Slack exactly once.

Each row is marked `sending` (committed) before the call and `sent` with its ts after. If the
process dies, or the connection drops, between the two, the outcome is unknown: the row is left
`sending` and, before anything else is sent, looked up in Slack by the alert id it carries. Only
if it is not there is it sent again. Per op:

- `post`: the alert id travels in the message metadata; top-level messages are looked up in
  `conversations.history`, thread replies (`thread_of`) in `conversations.replies` of the parent,
  because history does not list replies. A reply whose parent is not sent yet waits, and so does
  everything after it in that channel, so a channel's order never changes; a reply whose parent
  failed for good is posted top-level.
- `update`: after an unknown outcome the message is read back; if it already shows the row's text
  the update is recorded as sent, else it is redone (chat.update is idempotent).
- `upload`: files_upload_v2 with a file name that carries the alert id, looked up by that name
  among the files shared in the channel history.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from datetime import datetime, timedelta
from typing import Callable, Iterator
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from alerts import slack_render
from alerts.messages import ALERT_LINK
from alerts.receivers import DeliveryReport
from monitor.config import SlackConfig
from monitor.core.failures import FailureKind, SourceFailure
from monitor.health import after_failure, after_success
from monitor.core.records import AlertRow
from monitor.store import Store
from monitor.core.logs import get_logger

log = get_logger(__name__)

METADATA_EVENT = "mentionwatch_alert"
HEALTH_ID = "slack"
# Errors that concern one message, not Slack as a whole: that message is failed, the rest go on.
MESSAGE_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text",
                            "invalid_blocks", "invalid_blocks_format", "too_many_attachments",
                            "invalid_metadata_format", "invalid_metadata_schema", "restricted_action",
                         "message_not_found", "cant_update_message", "edit_window_closed", "thread_not_found",
                         "invalid_arguments", "file_not_found"})
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


def channels(client: WebClient) -> Iterator[dict]:
    """Every channel the bot can see, page after page (slack-sdk follows the cursor)."""
    for page in client.conversations_list(limit=1000, exclude_archived=True, types="public_channel,private_channel"):
        yield from page.get("channels", [])


def resolve_channel(client: WebClient, store: Store, name: str) -> str | None:
    """`#name` (or an id) as a channel id: remembered in the store after the first lookup in Slack."""
    if _CHANNEL_ID.match(name):
        return name
    known = store.channel_id(name)
    if known:
        return known
    found = next((c["id"] for c in channels(client) if c.get("name") == name.lstrip("#")), None)
    if found:
        store.remember_channel(name, found)
    return found


@dataclass(frozen=True)
class Target:
    """Where an alert's message is in Slack, once it is sent."""

    state: str
    channel_id: str | None = None
    ts: str | None = None


LOST_LEAD = "lost the lead"  # DeliveryReport.stopped: this node's process lease went to another node


class _Stop(Exception):
    def __init__(self, failure: SourceFailure):
        self.failure = failure


class _Held(Exception):
    """The message this row threads under or updates is not in Slack yet."""


class _Failed(Exception):
    """This row can never be delivered (its reason is stored as the row's error)."""


def permalink(target: Target) -> str | None:
    """A link to a sent message that opens it in any workspace the reader is in (Slack's archive URL)."""
    if target.state != "sent" or not target.channel_id or not target.ts:
        return None
    return f"https://slack.com/archives/{target.channel_id}/p{target.ts.replace('.', '')}"


def with_link(text: str, blocks: list | None, target: Target) -> tuple[str, list | None]:
    """Fill `{alert_link}` with a link to the target message (plain words if it was never posted)."""
    url = permalink(target)
    link = f"<{url}|the alert>" if url else "the alert (it could not be posted)"

    def fill(value):
        if isinstance(value, str):
            return value.replace(ALERT_LINK, link)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return fill(text), fill(blocks)


def upload_filename(filename: str, alert_id: int) -> str:
    """A file name unique to the alert, so a lost upload can be found in the channel history."""
    path = PurePosixPath(filename or "file")
    return f"{path.stem}-a{alert_id}{path.suffix}"


class SlackSender:
    """Drains the outbox in batches: one commit claims a batch, one commit records how it went.

    A crash in between leaves the batch `sending`; the next drain looks those rows up in the
    channel history (one history read per channel) and re-sends only what is not there.
    """

    BATCH = 50

    def __init__(self, client: WebClient, store: Store, clock: Callable[[], datetime], per_minute: int = 0):
        self.client = client
        self.store = store
        self.clock = clock
        self.per_minute = per_minute  # top-level messages a channel gets per minute; 0: no budget
        # A long 429's pause is in the stored health, so a restart does not knock on Slack before it ends.
        health = store.get_health(HEALTH_ID)
        self.paused_until = health.retry_at if health.kind == FailureKind.RATE_LIMITED.value else None
        self._channels: dict[str, str] = {}
        # Renews this node's lead before each message; False: another node sends now (monitor/nodes.py).
        self.still_leader: Callable[[], bool] = lambda: True
        self._views: dict[int, tuple[dict, int | None, list[tuple[int, dict]]]] = {}  # this drain's updated messages

    def deliver(self, limit: int = 200) -> DeliveryReport:
        """Send pending rows in order; stop at the first failure that is not about one message."""
        report = DeliveryReport()
        if self.paused_until and self.clock() < self.paused_until:
            report.stopped = "paused"
            return report
        try:
            if self.per_minute:
                folded = self.store.fold_bursts(self.per_minute, self.clock())
                if folded:
                    log.info("%d message(s) over a channel's budget of %d a minute go into threads", folded,
                             self.per_minute)
            rows = self.store.outbox(limit)
            self._views = self.store.message_views(sorted({row.updates for row in rows if row.op == "update"
                                                           and row.format == "neutral"}))
            refs = {ref for row in rows for ref in (row.thread_of, row.updates, row.payload.get("link_of"))} - {None}
            targets = {i: Target(*v) for i, v in self.store.slack_targets(sorted(refs)).items()}
            unknown = [row for row in rows if row.state == "sending"]
            posts = [row for row in unknown if row.op != "update"]
            # Parents first: a reply whose parent was also in flight can only be looked up in its thread
            # once the parent has been found.
            orphans = [row for row in posts if row.thread_of is not None
                       and targets.get(row.thread_of, Target("sent")).state == "sending"]
            found = self._reconcile([row for row in posts if row not in orphans], targets)
            found.update(self._reconcile(orphans, targets))
            found.update(self._reconcile_updates([row for row in unknown if row.op == "update"], targets))
            report.reconciled = len(found)
            todo = [row for row in rows if row.id not in found]
            held: set[str] = set()
            for start in range(0, len(todo), self.BATCH):
                if report.stopped:
                    break
                self._send_batch(todo[start:start + self.BATCH], report, targets, held)
        except _Stop as stop:
            report.stopped = stop.failure.kind.value
            self._record(stop.failure)
            return report
        if report.sent or report.reconciled:
            self._record(None)
        return report

    def _send_batch(self, batch: list[AlertRow], report: DeliveryReport, targets: dict[int, Target],
                    held: set[str]) -> None:
        """Claim, send and settle one batch; `held` collects channels whose order a waiting row keeps."""
        claimed_at = self.clock()
        owned = self.store.claim(batch, claimed_at)
        batch = [row for row in batch if row.id in owned]  # the rest another process claimed first
        sent: list[tuple[int, str, str | None]] = []
        unsent: list[tuple[int, str | None]] = []
        try:
            for i, row in enumerate(batch):
                if not self.still_leader():
                    unsent += [(later.id, None) for later in batch[i:]]
                    report.stopped = LOST_LEAD
                    log.warning("another node took over sending; %d message(s) left to it", len(batch) - i)
                    return
                try:
                    if row.channel in held:
                        raise _Held()
                    channel_id, ts = self._send_one(row, targets)
                except _Held:
                    held.add(row.channel)
                    unsent.append((row.id, None))
                    report.held += 1
                    continue
                except (_Failed, SlackApiError) as exc:
                    error = str(exc) if isinstance(exc, _Failed) else str(exc.response.get("error", ""))
                    if isinstance(exc, _Failed) or error in MESSAGE_ERRORS:
                        self.store.mark_failed(row.id, error)
                        targets[row.id] = Target("failed")
                        log.error("alert %s (%s) to %s failed: %s (will not retry)", row.id, row.op, row.channel,
                                  error, extra={"mention_id": row.mention_id})
                        report.failed += 1
                        continue
                    unsent += [(row.id, error or f"HTTP {exc.response.status_code}")]
                    unsent += [(later.id, None) for later in batch[i + 1:]]
                    raise _Stop(self._classify(exc)) from None
                except (TimeoutError, URLError, OSError, SlackRequestError) as exc:
                    # This call may or may not have arrived: it stays `sending`, for reconciliation.
                    unsent += [(later.id, None) for later in batch[i + 1:]]
                    raise _Stop(self._failure(exc)) from None
                targets[row.id] = Target("sent", channel_id, ts)
                sent.append((row.id, channel_id, ts))
                report.sent += 1
        finally:
            self.store.settle(sent, unsent, self.clock(), claimed_at)

    def _send_one(self, row: AlertRow, targets: dict[int, Target]) -> tuple[str, str | None]:
        """One Slack call for one row; returns the channel id and ts it is recorded with."""
        if row.op == "update":
            target = self._target(row.updates, targets)
            if target.state != "sent":
                raise _Failed(f"the message to update was not sent ({target.state})")
            text, blocks = self._shown(row, targets)
            self.client.chat_update(channel=target.channel_id, ts=target.ts, text=text, blocks=blocks)
            return target.channel_id, target.ts
        if row.op == "upload":
            return self._upload(row)
        channel, thread_ts = row.channel, None
        if row.thread_of is not None:
            parent = self._target(row.thread_of, targets)
            if parent.state == "sent":
                channel, thread_ts = parent.channel_id, parent.ts
        text, blocks = self._shown(row, targets)
        resp = self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
            unfurl_links=False, unfurl_media=False,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"alert_id": row.id}})
        if thread_ts is None:
            self._learn_channel(row.channel, resp["channel"])
        return resp["channel"], resp["ts"]

    def _shown(self, row: AlertRow, targets: dict[int, Target]) -> tuple[str, list | None]:
        """The row's text and blocks as sent: rendered now, with the link to the message it refers to
        (`link_of`: posted after that one, so the link is known; an update of it keeps the link)."""
        content = self._content(row)
        text, blocks = content["text"], content.get("blocks")
        if row.payload.get("link_of") is not None:
            text, blocks = with_link(text, blocks, self._target(row.payload["link_of"], targets))
        return text, blocks

    def _content(self, row: AlertRow) -> dict:
        """What the row shows in Slack, rendered now: a neutral message (for an update, its message with
        the changes queued up to this row), or Block Kit queued as such; either with its fold note."""
        if row.format != "neutral":
            return slack_render.with_folded(row.payload, row.folded)
        try:
            if row.op != "update":
                return slack_render.render(row.payload, (), row.folded)
            view = self._views.get(row.updates)
            if view is None:
                raise _Failed("the message to update holds no neutral message")
            message, folded, changes = view
            return slack_render.render(message, [change for i, change in changes if i <= row.id], folded)
        except (KeyError, TypeError, ValueError) as exc:
            raise _Failed(f"not a neutral message ({type(exc).__name__})") from None

    @staticmethod
    def _target(alert_id: int | None, targets: dict[int, Target]) -> Target:
        """The referred-to message: held while it is still queued; `failed` if it never will be sent."""
        target = targets.get(alert_id) if alert_id is not None else None
        if target is None:
            return Target("failed")
        if target.state in ("pending", "sending"):
            raise _Held()
        return target

    def _upload(self, row: AlertRow) -> tuple[str, str | None]:
        channel_id = self._channel_id(row.channel)
        if channel_id is None:
            raise _Failed("channel_not_found")
        payload = row.payload
        name = upload_filename(payload.get("filename", ""), row.id)
        try:
            content = base64.b64decode(payload["content_b64"], validate=True)
        except (KeyError, ValueError):
            raise _Failed("the upload has no valid content_b64") from None
        self.client.files_upload_v2(channel=channel_id, content=content,
                                    filename=name, title=payload.get("title") or name,
                                    initial_comment=payload.get("text"))
        return channel_id, None

    def _reconcile(self, rows: list[AlertRow], targets: dict[int, Target]) -> dict[int, tuple[str, str]]:
        """Which of these `sending` rows did reach Slack before we lost track? Those are recorded as sent.

        One read per channel (history) and per thread (replies); returns {alert id: (channel id, ts)}.
        """
        if not rows:
            return {}
        found: dict[int, tuple[str, str]] = {}
        try:
            places: dict[tuple[str, str | None], list[AlertRow]] = {}
            for row in rows:
                parent = targets.get(row.thread_of) if row.thread_of is not None else None
                if parent is not None and parent.state == "sent":
                    places.setdefault((parent.channel_id, parent.ts), []).append(row)
                elif parent is None or parent.state == "failed":
                    channel_id = self._channel_id(row.channel)
                    if channel_id is not None:
                        places.setdefault((channel_id, None), []).append(row)
            for (channel_id, thread_ts), place_rows in places.items():
                by_meta = {row.id for row in place_rows if row.op == "post"}
                by_name = {upload_filename(row.payload.get("filename", ""), row.id): row.id
                           for row in place_rows if row.op == "upload"}
                oldest = min(row.sending_at or row.created_at for row in place_rows) - timedelta(minutes=1)
                for message in self._messages(channel_id, thread_ts, oldest):
                    meta = message.get("metadata") or {}
                    alert_id = meta.get("event_payload", {}).get("alert_id")
                    if meta.get("event_type") == METADATA_EVENT and alert_id in by_meta:
                        found[alert_id] = (channel_id, message["ts"])
                    for file in message.get("files") or []:
                        if file.get("name") in by_name:
                            found[by_name[file["name"]]] = (channel_id, message["ts"])
        except (SlackApiError, TimeoutError, URLError, OSError) as exc:
            raise _Stop(self._failure(exc)) from None
        finally:
            self._record_found(found, targets)
        return found

    def _reconcile_updates(self, rows: list[AlertRow], targets: dict[int, Target]) -> dict[int, tuple[str, str]]:
        """Updates of unknown outcome that the message already shows (text and blocks): recorded, not
        redone. Anything less than an exact match is redone, which is harmless: chat.update is idempotent."""
        found: dict[int, tuple[str, str]] = {}
        try:
            for row in rows:
                target = targets.get(row.updates)
                if target is None or target.state != "sent" or target.ts is None:
                    continue
                resp = self.client.conversations_history(channel=target.channel_id, latest=target.ts,
                                                         oldest=target.ts, inclusive=True, limit=1)
                shown = next((m for m in resp.get("messages", []) if m.get("ts") == target.ts), None)
                try:
                    text, blocks = self._shown(row, targets)
                except (_Failed, _Held):
                    continue  # the send fails or holds it, with its reason
                if shown is not None and shown.get("text") == text and shown.get("blocks") == blocks:
                    found[row.id] = (target.channel_id, target.ts)
        except (SlackApiError, TimeoutError, URLError, OSError) as exc:
            raise _Stop(self._failure(exc)) from None
        finally:
            self._record_found(found, targets)
        return found

    def _record_found(self, found: dict[int, tuple[str, str]], targets: dict[int, Target]) -> None:
        """Rows that reached Slack before we lost track: sent, in the store and for the rest of this drain."""
        if found:
            self.store.settle([(i, c, ts) for i, (c, ts) in found.items()], [], self.clock())
            targets.update({i: Target("sent", c, ts) for i, (c, ts) in found.items()})
            log.info("%d alert(s) were already in Slack; recorded, not resent", len(found))

    def _failure(self, exc: Exception) -> SourceFailure:
        """A reconciliation read that failed stops the drain like a failed send."""
        if isinstance(exc, SlackApiError):
            return self._classify(exc)
        return SourceFailure(FailureKind.UNAVAILABLE, f"Slack unreachable ({type(exc).__name__})")

    def _messages(self, channel_id: str, thread_ts: str | None, oldest: datetime):
        """The channel's top-level messages, or one thread's replies, since `oldest`, with metadata."""
        since = f"{oldest.timestamp():.6f}"
        if thread_ts is None:
            pages = self.client.conversations_history(channel=channel_id, oldest=since, include_all_metadata=True,
                                                      limit=200)
        else:
            pages = self.client.conversations_replies(channel=channel_id, ts=thread_ts, oldest=since,
                                                      include_all_metadata=True, limit=200)
        for page in pages:  # slack-sdk follows next_cursor
            yield from page.get("messages", [])

    def _learn_channel(self, name: str, channel_id: str) -> None:
        if self._channels.get(name) != channel_id:
            self.store.remember_channel(name, channel_id)
            self._channels[name] = channel_id

    def _channel_id(self, name: str) -> str | None:
        if name not in self._channels:
            found = resolve_channel(self.client, self.store, name)
            if found is None:
                return None
            self._channels[name] = found
        return self._channels[name]

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

