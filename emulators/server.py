"""A threaded HTTP server on 127.0.0.1:0 that hands each request to an emulator's `handle`."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""  # repeated parameters (`actors=a&actors=b`) are only here

    def all(self, name: str) -> list[str]:
        """Every value of a repeated query parameter, in order."""
        return parse_qs(self.raw_query).get(name, [])

    def form(self) -> dict:
        """Parameters from the query, a form body or a JSON body, whichever the client used."""
        params = dict(self.query)
        ctype = self.headers.get("content-type", "")
        if self.body and "json" in ctype:
            params.update(json.loads(self.body))
        elif self.body:
            params.update({k: v[0] for k, v in parse_qs(self.body.decode()).items()})
        return params


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0   # seconds to wait before answering
    drop: bool = False   # close the connection without answering
    drip: float = 0.0    # seconds between the body's bytes, sent one at a time (a slow-loris server)

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> "Reply":
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json; charset=utf-8",
                                                       **(headers or {})})


class Emulator:
    """Subclasses implement `handle(request) -> Reply`."""

    def __init__(self) -> None:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, split.path, {k: v[0] for k, v in parse_qs(split.query).items()},
                                  {k.lower(): v for k, v in self.headers.items()}, body, split.query)
                reply = emulator.handle(request)
                if reply.stall:
                    emulator.stopped.wait(reply.stall)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if request.headers.get("connection", "").lower() == "close":
                    self.send_header("Connection", "close")  # the client will not reuse it: say so
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD" and reply.drip:
                    for i in range(len(reply.body)):
                        self.wfile.write(reply.body[i:i + 1])
                        self.wfile.flush()
                        if emulator.stopped.wait(reply.drip):
                            return
                elif self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = _serve

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                """Clients that time out and hang up are part of the scenarios, not errors."""

        self.stopped = threading.Event()
        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Emulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
