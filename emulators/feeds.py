"""RSS/Atom server: conditional GET (ETag, Last-Modified, 304), gzip, and scripted faults per feed."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import defaultdict, deque
from datetime import datetime, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

from emulators.server import Emulator, Reply, Request


def render_rss(title: str, link: str, items: list[dict]) -> bytes:
    """items: dicts with id, title, link, description, author, published (aware datetime)."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{escape(title)}</title>'
             f"<link>{escape(link)}</link><description>{escape(title)}</description>"]
    for item in items:
        parts.append(
            "<item>"
            f"<title>{escape(item['title'])}</title>"
            f"<link>{escape(item['link'])}</link>"
            f'<guid isPermaLink="false">{escape(item["id"])}</guid>'
            f"<description>{escape(item.get('description', ''))}</description>"
            + (f"<author>{escape(item['author'])}</author>" if item.get("author") else "")
            + (f"<pubDate>{format_datetime(item['published'])}</pubDate>" if item.get("published") else "")
            + "</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def render_atom(title: str, items: list[dict], google_alerts: bool = False) -> bytes:
    """Atom; with google_alerts, links are google.com/url redirects and titles carry <b> markup."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
             f"<title>{escape(title)}</title><id>tag:emulator,2026:{escape(title)}</id>"
             f"<updated>{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}</updated>"]
    for item in items:
        link = item["link"]
        if google_alerts:
            link = f"https://www.google.com/url?rct=j&sa=t&url={link}&ct=ga&cd=1&usg=AFQjCNE"
        published = item.get("published") or datetime.now(timezone.utc)
        parts.append(
            f"<entry><id>{escape(item['id'])}</id>"
            f'<title type="html">{escape(item["title"])}</title>'
            f'<link href="{escape(link)}"/>'
            f"<published>{published:%Y-%m-%dT%H:%M:%SZ}</published><updated>{published:%Y-%m-%dT%H:%M:%SZ}</updated>"
            f'<content type="html">{escape(item.get("description", ""))}</content>'
            + (f"<author><name>{escape(item['author'])}</name></author>" if item.get("author") else "")
            + "</entry>")
    parts.append("</feed>")
    return "".join(parts).encode()


class FeedsEmulator(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.feeds: dict[str, tuple[bytes, str, str]] = {}  # name -> body, content type, last-modified
        self.faults: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[Request] = []

    def url_for(self, name: str) -> str:
        return f"{self.url}/feeds/{name}"

    def set_feed(self, name: str, body: bytes, content_type: str = "application/rss+xml") -> None:
        with self._lock:
            self.feeds[name] = (body, content_type, format_datetime(datetime.now(timezone.utc), usegmt=True))

    def fail(self, name: str, reply: Reply, times: int = 1) -> None:
        """The next `times` requests for this feed get `reply` instead of the feed."""
        with self._lock:
            self.faults[name].extend([reply] * times)

    def gzip_bomb(self, name: str, megabytes: int) -> None:
        """A feed that is small on the wire and huge once decompressed."""
        body = gzip.compress(b"<rss><channel>" + b" " * (megabytes * 1_000_000), compresslevel=9)
        self.fail(name, Reply(200, body, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}))

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            name = request.path.removeprefix("/feeds/")
            if self.faults[name]:
                return self.faults[name].popleft()
            if name not in self.feeds:
                return Reply(404, b"not found", {"Content-Type": "text/plain"})
            body, content_type, last_modified = self.feeds[name]
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", {"ETag": etag, "Last-Modified": last_modified})
        headers = {"Content-Type": content_type, "ETag": etag, "Last-Modified": last_modified}
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return Reply(200, body, headers)

    def hits(self, name: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == f"/feeds/{name}")
