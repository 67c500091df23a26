"""A `requests.Session` that bounds every request in time and size, for every connector.

Why: a read timeout bounds each `recv`, not the request: a server dripping one byte every half
second keeps a 2 s read timeout happy for ever, and a gzip body of 1 MB may inflate to 1 GB.
`BoundedSession` is handed to our own HTTP code, to tweepy (`Client.session`) and to prawcore
(`Requestor(session=…)`), so all of them get:
- a total deadline per request (redirects included): a watchdog shuts the socket down when it
  passes, which ends a `recv` blocked mid-drip; the caller sees `DeadlineExceeded`;
- a cap on the body, counted compressed and inflated (`BodyTooLarge`); redirect bodies are never read;
- a bound on JSON nesting (`TooDeeplyNested`), which would otherwise be a `RecursionError` in
  whatever parses it.
All three are `requests.RequestException`s, so every client library passes them through as its
usual network failure, and `connectors.http.network_failure` classifies them.
"""

from __future__ import annotations

import re
import socket
import threading
from itertools import accumulate
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_JSON_DEPTH = 64
CHUNK = 16384


class DeadlineExceeded(requests.Timeout):
    """The whole request took longer than its total deadline (not retried by prawcore)."""


class BodyTooLarge(requests.RequestException):
    """The body, compressed or inflated, is larger than the cap."""


class TooDeeplyNested(requests.RequestException):
    """A JSON body nested deeper than MAX_JSON_DEPTH."""


# --- the watchdog ----------------------------------------------------------------------------------

class _Watch:
    """The sockets one request used; when the deadline passes they are shut down (once)."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    """Wake a thread blocked in `recv` on `sock` (TLS too: the plain socket's shutdown, not SSL's)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


_current = threading.local()


class _Watched:
    """Connection mixin: the socket a response is read from joins the current request's watch."""

    def getresponse(self, *args, **kwargs):
        watch = getattr(_current, "watch", None)
        if watch is not None and self.sock is not None:
            watch.add(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


# --- JSON nesting --------------------------------------------------------------------------------

_STRINGS = re.compile(rb'"[^"]*"')
_DEPTH_STEP = [0] * 256
_DEPTH_STEP[ord("[")] = _DEPTH_STEP[ord("{")] = 1
_DEPTH_STEP[ord("]")] = _DEPTH_STEP[ord("}")] = -1
_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def json_depth(body: bytes) -> int:
    """How deep a JSON document nests (brackets outside strings), in C-speed passes."""
    if b"[" not in body and b"{" not in body:
        return 0
    # Escaped backslashes, then escaped quotes, go first: what is left of each string is `"[^"]*"`,
    # which a regular expression strips in linear time whatever the input.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRINGS.sub(b"", unescaped).translate(None, _BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _looks_like_json(response: requests.Response, body: bytes) -> bool:
    return "json" in response.headers.get("content-type", "").lower() or body[:1] in (b"{", b"[")


# --- the session ---------------------------------------------------------------------------------

class BoundedSession(requests.Session):
    """Every request bounded: `timeout` (connect, read) per socket operation, `deadline` seconds in
    all, `max_bytes` of body compressed and inflated, JSON nested at most MAX_JSON_DEPTH deep."""

    def __init__(self, *, timeout: tuple[float, float], deadline: float, max_bytes: int):
        super().__init__()
        self.timeout = timeout
        self.deadline = deadline
        self.max_bytes = max_bytes
        for prefix in ("http://", "https://"):
            self.mount(prefix, _WatchedAdapter())
        self.hooks["response"].append(_no_redirect_body)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        kwargs["stream"] = True
        watch = _Watch(self.deadline)
        _current.watch = watch
        try:
            response = super().request(method, url, *args, **kwargs)
            try:
                response._content = self._read(response, watch)
            finally:
                response.close()
            return response
        except requests.RequestException:
            if watch.expired:
                raise DeadlineExceeded(f"no complete answer within {self.deadline:g} s") from None
            raise
        except OSError:
            if watch.expired:
                raise DeadlineExceeded(f"no complete answer within {self.deadline:g} s") from None
            raise
        finally:
            watch.cancel()
            _current.watch = None

    def _read(self, response: requests.Response, watch: _Watch) -> bytes:
        body = bytearray()
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) > self.max_bytes or response.raw.tell() > self.max_bytes:
                raise BodyTooLarge(f"body larger than {self.max_bytes:,} bytes")
            if watch.expired:
                raise DeadlineExceeded(f"no complete answer within {self.deadline:g} s")
        if watch.expired:
            raise DeadlineExceeded(f"no complete answer within {self.deadline:g} s")
        if _looks_like_json(response, body) and json_depth(bytes(body)) > MAX_JSON_DEPTH:
            raise TooDeeplyNested(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return bytes(body)


def _no_redirect_body(response: requests.Response, *args, **kwargs) -> requests.Response:
    """requests reads a redirect's whole body before following it: never read it at all."""
    if response.is_redirect:
        response._content = b""
        response.close()
    return response
