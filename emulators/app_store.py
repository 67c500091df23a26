"""Apple customer-reviews feed: `/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json`.

Answers in the shape of tests/data/app_store/customerreviews_page1.json (see its `_note` for where
that shape comes from): most recent first, 50 reviews a page, 10 pages deep, `feed.entry` a list,
a single object for one entry and absent for none, `feed.link` with first/last/previous/next, and
optionally the app's metadata entry first on page 1. Faults are scripted as a queue of Replies
(429 with Retry-After, 5xx, a stall, a bad body), and reviews can be made to arrive between two
page requests, which pushes reviews already served onto the next page.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

from emulators.server import Emulator, Reply, Request

PER_PAGE = 50
DEPTH = 10
PACIFIC = timezone(timedelta(hours=-7))
_PATH = re.compile(r"^/(?P<country>[a-z]{2})/rss/customerreviews(?:/page=(?P<page>\d+))?/id=(?P<app>\d+)"
                   r"(?:/sortby=\w+)?/json/?$", re.IGNORECASE)


def review(review_id: str, title: str, content: str, rating: int, updated: datetime, author: str = "reviewer",
           version: str = "4.2.1") -> dict:
    return {"id": review_id, "title": title, "content": content, "rating": rating, "updated": updated,
            "author": author, "version": version}


def _stamp(when: datetime) -> str:
    return when.astimezone(PACIFIC).replace(microsecond=0).isoformat()


def render_entry(country: str, app_id: str, item: dict) -> dict:
    return {
        "author": {"uri": {"label": f"https://itunes.apple.com/{country}/reviews/id{zlib.crc32(item['author'].encode())}"},
                   "name": {"label": item["author"]}, "label": ""},
        "updated": {"label": _stamp(item["updated"])},
        "im:rating": {"label": str(item["rating"])},
        "im:version": {"label": item["version"]},
        "id": {"label": item["id"]},
        "title": {"label": item["title"]},
        "content": {"label": item["content"], "attributes": {"type": "text"}},
        "link": {"attributes": {"rel": "related",
                                "href": f"https://itunes.apple.com/{country}/review?id={app_id}&type=Purple%20Software"}},
        "im:voteSum": {"label": "0"},
        "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
        "im:voteCount": {"label": "0"},
    }


def render_metadata_entry(country: str, app_id: str, name: str) -> dict:
    app_url = f"https://apps.apple.com/{country}/app/id{app_id}?uo=2"
    return {
        "im:name": {"label": name},
        "rights": {"label": f"© {name}"},
        "im:price": {"label": "Get", "attributes": {"amount": "0.00000", "currency": "USD"}},
        "im:image": [{"label": f"https://is1-ssl.mzstatic.com/image/thumb/{app_id}/{size}x{size}bb.png",
                      "attributes": {"height": str(size)}} for size in (53, 75, 100)],
        "im:artist": {"label": name, "attributes": {"href": f"https://apps.apple.com/{country}/developer/id1?uo=2"}},
        "title": {"label": f"{name} - {name}"},
        "link": {"attributes": {"rel": "alternate", "type": "text/html", "href": app_url}},
        "id": {"label": app_url, "attributes": {"im:id": app_id, "im:bundleId": f"com.example.{app_id}"}},
        "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
        "category": {"attributes": {"im:id": "6002", "term": "Utilities", "label": "Utilities",
                                    "scheme": f"https://apps.apple.com/{country}/genre/ios-utilities/id6002?uo=2"}},
        "im:releaseDate": {"label": "2021-03-02T00:00:00-07:00", "attributes": {"label": "Mar 2, 2021"}},
    }


def render_page(country: str, app_id: str, page: int, items: list[dict], metadata: str | None = None) -> dict:
    """One page of the feed; `items` are all reviews of the app in that country, newest first."""
    last = max(1, min(DEPTH, -(-len(items) // PER_PAGE)))
    entries = [render_entry(country, app_id, r) for r in items[(page - 1) * PER_PAGE: page * PER_PAGE]]
    if metadata and page == 1:
        entries.insert(0, render_metadata_entry(country, app_id, metadata))
    base = f"https://itunes.apple.com/{country}/rss/customerreviews"
    desc = f"/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json"

    def href(n: int) -> str:
        return f"{base}/page={n}/id={app_id}/sortby=mostrecent/xml?urlDesc={desc}"

    feed = {
        "author": {"name": {"label": "iTunes Store"}, "uri": {"label": f"http://www.apple.com/{country}/itunes/"}},
        "updated": {"label": _stamp(datetime.now(timezone.utc))},
        "rights": {"label": "Copyright 2008 Apple Inc."},
        "title": {"label": "iTunes Store: Customer Reviews"},
        "icon": {"label": "http://itunes.apple.com/favicon.ico"},
        "link": [
            {"attributes": {"rel": "alternate", "type": "text/html",
                            "href": f"https://apps.apple.com/WebObjects/MZStore.woa/wa/viewGrouping?cc={country}&id=1&mt=8"}},
            {"attributes": {"rel": "self", "href": f"{base}/page={page}/id={app_id}/sortby=mostrecent/json"}},
            {"attributes": {"rel": "first", "href": href(1)}},
            {"attributes": {"rel": "last", "href": href(last)}},
            {"attributes": {"rel": "previous", "href": href(max(page - 1, 1))}},
            {"attributes": {"rel": "next", "href": href(min(page + 1, last))}},
        ],
        "id": {"label": f"https://mzstoreservices-int-st.itunes.apple.com/{country}/rss/customerreviews/page={page}"
                        f"/id={app_id}/sortby=mostrecent/json"},
    }
    if len(entries) == 1:
        feed["entry"] = entries[0]
    elif entries:
        feed["entry"] = entries
    return {"feed": feed}


class AppStoreEmulator(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.reviews: dict[tuple[str, str], list[dict]] = defaultdict(list)  # (country, app) -> newest first
        self.metadata: dict[tuple[str, str], str] = {}  # app name shown as the first entry of page 1
        self.faults: deque[Reply] = deque()
        self.arrivals: dict[int, list[tuple[str, str, list[dict]]]] = defaultdict(list)
        self.requests: list[Request] = []

    def add_reviews(self, country: str, app_id: str, items: list[dict]) -> None:
        with self._lock:
            self._add(country, app_id, items)

    def _add(self, country: str, app_id: str, items: list[dict]) -> None:
        merged = self.reviews[(country, app_id)] + list(items)
        self.reviews[(country, app_id)] = sorted(merged, key=lambda r: r["updated"], reverse=True)

    def arrive_before_page(self, page: int, country: str, app_id: str, items: list[dict]) -> None:
        """These reviews appear just before the next request for `page` is answered."""
        with self._lock:
            self.arrivals[page].append((country, app_id, items))

    def fail(self, reply: Reply, times: int = 1) -> None:
        """The next `times` requests get `reply` instead of the feed."""
        with self._lock:
            self.faults.extend([reply] * times)

    def pages_requested(self, country: str | None = None, app_id: str | None = None) -> list[int]:
        with self._lock:
            out = []
            for req in self.requests:
                match = _PATH.match(req.path)
                if match and country in (None, match["country"].lower()) and app_id in (None, match["app"]):
                    out.append(int(match["page"] or 1))
            return out

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.faults:
                return self.faults.popleft()
            match = _PATH.match(request.path)
            if not match:
                return Reply(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})
            country, app_id, page = match["country"].lower(), match["app"], int(match["page"] or 1)
            if not 1 <= page <= DEPTH:
                return Reply(400, b"CustomerReviews RSS page depth is limited to 10", {"Content-Type": "text/plain"})
            for arrival in self.arrivals.pop(page, []):
                self._add(*arrival)
            data = render_page(country, app_id, page, self.reviews.get((country, app_id), []),
                               self.metadata.get((country, app_id)))
        return Reply.json(data)


def serve_demo(emulator: AppStoreEmulator, data: dict, now: datetime) -> dict:
    """Publish the demo's sample reviews; returns what the demo config adds: platform settings and sources."""
    app_id = str(data["app_id"])
    for i, item in enumerate(data["reviews"]):
        emulator.add_reviews(item["country"], app_id, [review(
            str(11_000_000_000 + i), item["title"], item["text"], item["rating"],
            now - timedelta(minutes=item["age"]), author=item["author"], version=item["version"])])
    countries = sorted({item["country"] for item in data["reviews"]})
    for country in countries:
        emulator.metadata[(country, app_id)] = data["app_name"]
    return {"platform": {"base_url": emulator.url},
            "sources": [{"type": "app_store", "name": "ios-reviews", "apps": [app_id], "countries": countries,
                       "interval": "30s"}]}
