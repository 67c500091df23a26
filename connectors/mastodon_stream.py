"""Mastodon's streaming API: one websocket per instance and hashtag (`/api/v1/streaming?stream=hashtag`),
shared by every source of the process, buffering the statuses it pushes for the polls.

The stream only ever adds to polling, never replaces its guarantees: a poll trusts the buffer alone
while the socket has stayed connected since the poll last read the timeline over REST (same
`generation`); after any reconnect, or a buffer that overflowed, the next poll pages the timeline
from its `min_id` cursor again, so nothing pushed while the socket was down is lost, and the
cursor (plus the store's unique `uri`) keeps what both paths saw from being stored twice.
"""

from __future__ import annotations

import json
import random
import threading
import time
from urllib.parse import urlencode, urlsplit

from websockets.exceptions import ConnectionClosedOK, WebSocketException
from websockets.sync.client import connect

from monitor.core.logs import get_logger

log = get_logger(__name__)
BUFFER = 5_000          # statuses held per stream; more before a poll takes them forces a REST read
RECONNECT_MIN, RECONNECT_MAX = 1.0, 300.0


def _numeric_id(status: object) -> int | None:
    value = status.get("id") if isinstance(status, dict) else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


class TagStream:
    """The statuses an instance pushes for one hashtag, kept in memory for the polls to take."""

    def __init__(self, base: str, tag: str, token: str | None, connect_timeout: float) -> None:
        self.url = f"{base}/api/v1/streaming?" + urlencode({"stream": "hashtag", "tag": tag})
        self.what = f"{urlsplit(base).netloc} #{tag}"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._statuses: dict[int, dict] = {}
        self.generation = 0          # bumped on every (re)connect and overflow: the poll reads REST again
        self.connected = False
        self.last_event: float | None = None   # monotonic time of the last status pushed
        self._state: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mastodon-stream {self.what}", daemon=True)
        self._thread.start()

    def take(self, after: int) -> tuple[list[dict], int, bool]:
        """Buffered statuses with an id above `after` (oldest first), the generation they belong to, and
        whether the socket is connected. What is at or below `after` is dropped: the caller has it."""
        with self._lock:
            for sid in [s for s in self._statuses if s <= after]:
                del self._statuses[sid]
            found = [self._statuses[s] for s in sorted(self._statuses)]
            return found, self.generation, self.connected

    def stop(self) -> None:
        self._stop.set()

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self._state:
            self._state = state
            (log.info if state in ("connected", "closed") else log.warning)(
                "Mastodon stream %s %s%s", self.what, state, f": {detail}" if detail else "")

    def _run(self) -> None:
        delay = RECONNECT_MIN
        while not self._stop.is_set():
            try:
                with connect(self.url, additional_headers=self._headers, open_timeout=self._connect_timeout,
                             close_timeout=1, max_size=1_000_000, proxy=None) as ws:
                    with self._lock:
                        self.generation += 1
                        self.connected = True
                    self._set_state("connected")
                    delay = RECONNECT_MIN
                    while not self._stop.is_set():
                        try:
                            message = ws.recv(timeout=1.0)
                        except TimeoutError:
                            continue  # a quiet hashtag; the library's pings notice a dead socket
                        self._accept(message)
            except ConnectionClosedOK:
                self._set_state("closed", "by the server; polling covers the gap, then reconnecting")
            except (OSError, WebSocketException, TimeoutError) as exc:
                self._set_state("disconnected", f"{type(exc).__name__}; polling covers it until it is back")
            finally:
                with self._lock:
                    self.connected = False
            if self._stop.wait(delay * random.uniform(0.5, 1.5)):
                break
            delay = min(delay * 2, RECONNECT_MAX)

    def _accept(self, message: str | bytes) -> None:
        """An `update` event's payload (a status, JSON-encoded inside the JSON) goes into the buffer."""
        try:
            event = json.loads(message)
            status = json.loads(event["payload"]) if event.get("event") == "update" else None
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return  # the REST read after the next reconnect covers anything unreadable here
        sid = _numeric_id(status)
        if sid is None:
            return
        with self._lock:
            self._statuses[sid] = status
            self.last_event = time.monotonic()
            if len(self._statuses) > BUFFER:
                self._statuses.pop(min(self._statuses))
                self.generation += 1   # something was let go: the next poll reads REST from its cursor


_STREAMS: dict[tuple[str, str, str | None], TagStream] = {}
_LOCK = threading.Lock()


def stream(base: str, tag: str, token: str | None, connect_timeout: float) -> TagStream:
    """The process's one stream of `tag` from the streaming server at `base` (started on first use)."""
    key = (base, tag.casefold(), token)
    with _LOCK:
        found = _STREAMS.get(key)
        if found is None:
            found = _STREAMS[key] = TagStream(base, tag, token, connect_timeout)
        return found


def close_all() -> None:
    """Stop every stream (tests, shutdown)."""
    with _LOCK:
        streams = list(_STREAMS.values())
        _STREAMS.clear()
    for each in streams:
        each.stop()
