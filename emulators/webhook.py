"""A webhook receiver on loopback: records every POST, checks its HMAC signature, and remembers
idempotency keys the way a careful receiver would (a repeated key is answered 200 and not delivered
twice). Faults queue up per request: an error status (with `Retry-After`), or store-then-drop (the
receiver got it but the sender never hears back)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass

from emulators.server import Emulator, Reply, Request

DELIVER_THEN_DROP = "deliver-then-drop"


@dataclass(frozen=True)
class Received:
    key: str | None
    signature_ok: bool
    body: dict
    status: int  # what the emulator answered (0: dropped the connection)


def error(status: int, retry_after: str | None = None) -> Reply:
    return Reply.json({"error": f"HTTP {status}"}, status, {"Retry-After": retry_after} if retry_after else None)


class WebhookEmulator(Emulator):
    def __init__(self, secret: str, path: str = "/hook"):
        super().__init__()
        self.secret = secret.encode()
        self.path = path
        self._lock = threading.Lock()
        self.requests: list[Received] = []
        self.delivered: dict[str, dict] = {}  # key -> body: what the receiver acted on, once per key
        self.faults: deque = deque()
        self.latency = 0.0  # seconds between recording a request and answering it: a window for crashes

    @property
    def hook_url(self) -> str:
        return self.url + self.path

    def fail(self, fault: Reply | str, times: int = 1) -> None:
        with self._lock:
            self.faults.extend([fault] * times)

    def verify(self, body: bytes, header: str | None) -> bool:
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(expected, header)

    def handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != self.path:
            return error(404)
        key = request.headers.get("idempotency-key")
        ok = self.verify(request.body, request.headers.get("x-mentionwatch-signature"))
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {}
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
            if isinstance(fault, Reply):
                self.requests.append(Received(key, ok, body, fault.status))
                return fault
            status = 200 if ok else 401
            if ok and key is not None:
                self.delivered.setdefault(key, body)
            self.requests.append(Received(key, ok, body, 0 if fault == DELIVER_THEN_DROP else status))
        if fault == DELIVER_THEN_DROP:
            return Reply(drop=True)
        reply = Reply.json({"ok": ok}, status)
        reply.stall = self.latency
        return reply
