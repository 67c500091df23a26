"""A Jetstream websocket on 127.0.0.1: Jetstream's JSON events, `wantedCollections` and `cursor` replay.

Tests append events (`post`, `delete`, `repost`, or a raw message); every connected client gets
them live, and a client connecting with `cursor=T` first gets the kept events with `time_us >= T`.
`drop()` closes every socket, `stall()` keeps sockets open and silent until `resume()`, and
`forget_before(T)` ends the replay window."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from websockets.sync.server import ServerConnection, serve

COLLECTION = "app.bsky.feed.post"


def post_event(time_us: int, did: str, rkey: str, text: str, facets: list | None = None, embed: dict | None = None,
               reply: dict | None = None) -> dict:
    record = {"$type": COLLECTION, "createdAt": "2026-11-20T12:00:00.000Z", "langs": ["en"], "text": text}
    if facets:
        record["facets"] = facets
    if embed:
        record["embed"] = embed
    if reply:
        record["reply"] = reply
    return {"did": did, "time_us": time_us, "kind": "commit",
            "commit": {"rev": f"rev{time_us}", "operation": "create", "collection": COLLECTION, "rkey": rkey,
                       "record": record, "cid": f"bafy{time_us}"}}


def delete_event(time_us: int, did: str, rkey: str) -> dict:
    return {"did": did, "time_us": time_us, "kind": "commit",
            "commit": {"rev": f"rev{time_us}", "operation": "delete", "collection": COLLECTION, "rkey": rkey}}


def repost_event(time_us: int, did: str, rkey: str, subject_uri: str) -> dict:
    return {"did": did, "time_us": time_us, "kind": "commit",
            "commit": {"rev": f"rev{time_us}", "operation": "create", "collection": "app.bsky.feed.repost",
                       "rkey": rkey, "record": {"$type": "app.bsky.feed.repost", "createdAt": "2026-11-20T12:00:00Z",
                                                "subject": {"uri": subject_uri, "cid": "bafy"}}}}


def link_facet(uri: str, start: int = 0, end: int = 1) -> dict:
    return {"index": {"byteStart": start, "byteEnd": end},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}]}


class JetstreamEmulator:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._log: list[tuple[int | None, str, str | None]] = []   # (time_us, message, collection)
        self._oldest = 0
        self._stalled = False
        self._epoch = 0          # bumped by drop(): handlers of an older epoch close
        self.connects: list[str] = []   # each connection's query string, in order
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/subscribe"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "JetstreamEmulator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.drop()
        self._server.shutdown()
        self._thread.join(timeout=5)

    # --- what tests do ---

    def send(self, event: dict) -> None:
        commit = event.get("commit") if isinstance(event.get("commit"), dict) else {}
        self._append(event.get("time_us"), json.dumps(event), commit.get("collection"))

    def send_raw(self, message: str, time_us: int | None = None) -> None:
        """A message as it is (malformed JSON, a wrong shape)."""
        self._append(time_us, message, COLLECTION)

    def _append(self, time_us, message: str, collection: str | None) -> None:
        with self._cond:
            self._log.append((time_us, message, collection))
            self._cond.notify_all()

    def drop(self) -> None:
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    def stall(self) -> None:
        with self._cond:
            self._stalled = True

    def resume(self) -> None:
        with self._cond:
            self._stalled = False
            self._cond.notify_all()

    def forget_before(self, time_us: int) -> None:
        with self._cond:
            self._oldest = time_us

    # --- the server ---

    def _handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        wanted = set(query.get("wantedCollections", []))
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        with self._cond:
            self.connects.append(urlsplit(ws.request.path).query)
            epoch = self._epoch
            if cursor is None:
                position = len(self._log)
            else:
                cursor = max(cursor, self._oldest)
                position = next((i for i, (t, _, _) in enumerate(self._log) if t is not None and t >= cursor),
                                len(self._log))
        while True:
            with self._cond:
                while epoch == self._epoch and (self._stalled or position >= len(self._log)):
                    self._cond.wait(0.5)
                if epoch != self._epoch:
                    break
                time_us, message, collection = self._log[position]
                position += 1
            if wanted and collection is not None and collection not in wanted:
                continue
            try:
                ws.send(message)
            except Exception:  # noqa: BLE001 - the client went away
                return
        ws.close()


def serve_demo(emulator: JetstreamEmulator, data: dict, now, appview=None) -> dict:
    """Stream the demo's posts once a client connects (with send times after its cursor), their
    authors' profiles on `appview`; returns the platform settings, the source, and `settled(store)`:
    whether the source's cursor covers them all."""
    sent: list[int] = []
    for post in data["posts"]:
        if appview is not None and post.get("handle"):
            appview.profile(post["did"], post["handle"], post.get("followers", 0))

    def stream() -> None:
        deadline = time.monotonic() + 120
        while not emulator.connects and time.monotonic() < deadline:
            time.sleep(0.05)
        for post in data["posts"]:
            facets = [link_facet(post["link"])] if post.get("link") else []
            facets += [{"index": {"byteStart": 0, "byteEnd": 1},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": post["tag"]}]}] \
                if post.get("tag") else []
            event = post_event(max(time.time_ns() // 1000, (sent[-1] + 1) if sent else 0), post["did"], post["rkey"],
                               post["text"], facets=facets or None)
            created = now - timedelta(minutes=post["age"])
            event["commit"]["record"]["createdAt"] = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            emulator.send(event)
            sent.append(event["time_us"])

    threading.Thread(target=stream, name="jetstream-demo", daemon=True).start()

    def settled(store) -> bool:
        cursor = store.get_cursor("acme/bluesky") or {}
        return len(sent) == len(data["posts"]) and cursor.get("time_us", 0) >= sent[-1]

    return {"platform": {"jetstream_url": emulator.url, **({"api": {"base_url": appview.url}} if appview else {})},
            "sources": [{"type": "bluesky", "name": "bluesky", "interval": "2s"}], "settled": settled}
