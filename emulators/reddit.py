"""Reddit API server speaking the wire format praw 8 / prawcore 4 read (see praw's recorded cassettes
in ../shared/fixtures/reddit/): the OAuth token endpoint, subreddit and search listings honouring
`after`/`before`/`limit` with Reddit's capped depth, `/comments/<id>` threads, a user's comments
(`/user/<name>/comments`), `/api/info`, all three
`x-ratelimit-*` headers (or none), 401 with `www-authenticate`, 403/404/302 for private, banned and
unknown subreddits, 429 with `Retry-After`, and scripted faults per path.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from emulators.server import Emulator, Reply, Request

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "reddit"
TOKEN_PATH = "/api/v1/access_token"
WWW_AUTHENTICATE = 'Bearer realm="reddit", error="invalid_token"'
_FIRST_ID = {"t3": int("1a00000", 36), "t1": int("m000000", 36)}


def to36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


def fixture_children(name: str, interaction: int = 1) -> list[dict]:
    """The `children` of a recorded listing (interaction 0 is always the token request)."""
    cassette = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    body = json.loads(cassette["interactions"][interaction]["response"]["body"]["string"])
    return body["data"]["children"]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:50] or "post"


def _search_hit(query: str, text: str) -> bool:
    """Enough of Reddit's syntax for tests: `"a phrase" OR word OR two words` (AND within an alternative)."""
    for alternative in re.split(r"\s+OR\s+", query):
        words = [a or b for a, b in re.findall(r'"([^"]+)"|(\S+)', alternative)]
        if words and all(word.lower() in text for word in words):
            return True
    return False


@dataclass
class Subreddit:
    name: str
    status: str = "public"  # public | private | quarantined | banned
    posts: list[str] = field(default_factory=list)      # fullnames, oldest first
    comments: list[str] = field(default_factory=list)


class RedditEmulator(Emulator):
    def __init__(self, client_id: str = "emulator-client", client_secret: str = "emulator-secret",
                 username: str | None = None, password: str | None = None, listing_cap: int = 1000,
                 ratelimit: tuple[int, float] | None = (1000, 600.0), clock: Callable[[], float] = time.time):
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.listing_cap = listing_cap
        self.ratelimit = ratelimit          # (requests, window seconds); None: send no x-ratelimit headers
        self.clock = clock
        self.reject_tokens = False          # every API call answers 401, even with a fresh token
        self.missing_users: set[str] = set()  # casefolded names whose /user/<name> pages answer 404
        self._lock = threading.Lock()
        self._next_id = dict(_FIRST_ID)
        self.items: dict[str, dict] = {}
        self.subreddits: dict[str, Subreddit] = {}
        self.tokens: set[str] = set()
        self.faults: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[Request] = []
        self._window: tuple[float, int] = (0.0, 0)  # start, used

    # --- content -------------------------------------------------------------------------------

    def subreddit(self, name: str, status: str = "public") -> Subreddit:
        with self._lock:
            sub = self.subreddits.setdefault(name.lower(), Subreddit(name))
            sub.status = status
            return sub

    def _new_id(self, kind: str) -> str:
        number = self._next_id[kind]
        self._next_id[kind] = number + 1
        return to36(number)

    def add_post(self, subreddit: str, title: str, selftext: str = "", author: str | None = "a_redditor",
                 created_utc: float | None = None, score: int = 1, **fields) -> dict:
        """A self post; `author=None` is a deleted account. Extra fields override the defaults."""
        sub = self.subreddits.get(subreddit.lower()) or self.subreddit(subreddit)
        with self._lock:
            post_id = self._new_id("t3")
            permalink = f"/r/{sub.name}/comments/{post_id}/{_slug(title)}/"
            data = {
                "id": post_id, "name": f"t3_{post_id}", "title": title, "selftext": selftext, "selftext_html": None,
                "author": author or "[deleted]", "subreddit": sub.name,
                "subreddit_id": "t5_" + to36(zlib.crc32(sub.name.lower().encode())),
                "subreddit_name_prefixed": f"r/{sub.name}", "subreddit_type": "public",
                "created_utc": created_utc if created_utc is not None else self.clock(),
                "permalink": permalink, "url": f"https://www.reddit.com{permalink}", "domain": f"self.{sub.name}",
                "is_self": True, "num_comments": 0, "score": score, "ups": score, "upvote_ratio": 1.0,
                "over_18": False, "stickied": False, "locked": False, "archived": False, "distinguished": None,
                "edited": False, "removed_by_category": None, "link_flair_text": None, "spoiler": False,
                "thumbnail": "self", **fields}
            data["created"] = data["created_utc"]
            self.items[data["name"]] = data
            sub.posts.append(data["name"])
            return data

    def add_comment(self, parent: str, body: str, author: str | None = "a_redditor",
                    created_utc: float | None = None, score: int = 1, **fields) -> dict:
        """A comment under `parent` (a post's or a comment's fullname)."""
        with self._lock:
            parent_data = self.items[parent]
            post = parent_data if parent.startswith("t3_") else self.items[parent_data["link_id"]]
            sub = self.subreddits[post["subreddit"].lower()]
            comment_id = self._new_id("t1")
            data = {
                "id": comment_id, "name": f"t1_{comment_id}", "body": body, "body_html": None,
                "author": author or "[deleted]", "subreddit": sub.name, "subreddit_id": post["subreddit_id"],
                "subreddit_name_prefixed": f"r/{sub.name}", "subreddit_type": "public",
                "created_utc": created_utc if created_utc is not None else self.clock(),
                "permalink": f"{post['permalink']}{comment_id}/", "link_id": post["name"], "parent_id": parent,
                "link_title": post["title"], "link_author": post["author"], "link_permalink": post["url"],
                "link_url": post["url"], "score": score, "ups": score, "replies": "", "is_submitter": False,
                "stickied": False, "distinguished": None, "edited": False, "controversiality": 0,
                "num_comments": post["num_comments"] + 1, **fields}
            data["created"] = data["created_utc"]
            post["num_comments"] += 1
            self.items[data["name"]] = data
            sub.comments.append(data["name"])
            return data

    def add_recorded(self, subreddit: str, children: Iterable[dict], newest_at: float | None = None) -> list[dict]:
        """Serve recorded items in `subreddit` under fresh ids, oldest first, keeping their spacing in
        time but moved so the newest one was created at `newest_at` (default: now)."""
        children = sorted(children, key=lambda c: c["data"]["created_utc"])
        if not children:
            return []
        shift = (newest_at if newest_at is not None else self.clock()) - children[-1]["data"]["created_utc"]
        sub = self.subreddits.get(subreddit.lower()) or self.subreddit(subreddit)
        out = []
        with self._lock:
            for child in children:
                kind, data = child["kind"], dict(child["data"])
                data["id"] = self._new_id(kind)
                data["name"] = f"{kind}_{data['id']}"
                data["subreddit"] = sub.name
                data["created_utc"] = data["created"] = data["created_utc"] + shift
                if kind == "t3":
                    data["permalink"] = f"/r/{sub.name}/comments/{data['id']}/{_slug(data.get('title', ''))}/"
                    sub.posts.append(data["name"])
                else:
                    data.pop("permalink", None)  # 2016 recordings have none: readers must build it
                    sub.comments.append(data["name"])
                self.items[data["name"]] = data
                out.append(data)
        return out

    def remove(self, fullname: str) -> None:
        """Take an item out of every listing, as a moderator's removal does."""
        with self._lock:
            for sub in self.subreddits.values():
                for names in (sub.posts, sub.comments):
                    if fullname in names:
                        names.remove(fullname)

    def load_sample(self, data: dict, now: float) -> None:
        """The demo's sample threads: {subreddit, posts: [{age (minutes), author, title, text, comments}]}."""
        self.subreddit(data["subreddit"])

        def replies(parent: str, comments: list[dict]) -> None:
            for comment in comments:
                made = self.add_comment(parent, comment["text"], comment.get("author"),
                                        now - comment["age"] * 60, comment.get("score", 1))
                replies(made["name"], comment.get("comments", []))

        for post in data["posts"]:
            made = self.add_post(post.get("subreddit", data["subreddit"]), post["title"], post.get("text", ""),
                                 post.get("author"), now - post["age"] * 60, post.get("score", 1))
            replies(made["name"], post.get("comments", []))

    # --- faults and inspection -----------------------------------------------------------------

    def fail(self, path: str, reply: Reply, times: int = 1) -> None:
        """The next `times` requests for `path` (e.g. `/r/acme/new`; `*`: any API path; `token`: the
        token endpoint) get `reply`."""
        with self._lock:
            self.faults[path.rstrip("/") or "/"].extend([reply] * times)

    def api_requests(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path != TOKEN_PATH
                       and (path is None or r.path.rstrip("/") == path.rstrip("/")))

    def token_requests(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == TOKEN_PATH)

    # --- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if request.path == TOKEN_PATH:
                reply = self.faults["token"].popleft() if self.faults["token"] else self._token(request)
                if request.headers.get("connection", "").lower() == "close":
                    # prawcore asks for it; without the echo the client would reuse a closed connection
                    reply.headers["Connection"] = "close"
                return reply
            path = request.path.rstrip("/") or "/"
            for key in (path, "*"):
                if self.faults[key]:
                    return self.faults[key].popleft()
            auth = request.headers.get("authorization", "")
            if self.reject_tokens or not auth.lower().startswith("bearer ") or auth[7:] not in self.tokens:
                return Reply.json({"message": "Unauthorized", "error": 401}, 401,
                                  {"www-authenticate": WWW_AUTHENTICATE})
            limits, over = self._count()
            if over:
                return Reply.json({"message": "Too Many Requests", "error": 429}, 429,
                                  {**limits, "Retry-After": limits["x-ratelimit-reset"]})
            reply = self._route(path, request.query)
            reply.headers.update(limits)
            return reply

    def _token(self, request: Request) -> Reply:
        try:
            basic = base64.b64decode(request.headers.get("authorization", "")[6:]).decode()
        except ValueError:
            basic = ""
        if basic != f"{self.client_id}:{self.client_secret}":
            return Reply.json({"message": "Unauthorized", "error": 401}, 401)
        form = request.form()
        if form.get("grant_type") == "password" and (form.get("username"), form.get("password")) != (
                self.username, self.password):
            return Reply.json({"error": "invalid_grant"})
        token = secrets.token_urlsafe(16)
        self.tokens.add(token)
        return Reply.json({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})

    def expire_tokens(self) -> None:
        """Every issued token stops working (as after its 24 h): the next call gets 401 once."""
        with self._lock:
            self.tokens.clear()

    def _count(self) -> tuple[dict[str, str], bool]:
        if self.ratelimit is None:
            return {}, False
        limit, window = self.ratelimit
        now = self.clock()
        start, used = self._window
        if now >= start + window:
            start, used = now, 0
        used += 1
        self._window = (start, used)
        remaining = max(limit - used, 0)
        headers = {"x-ratelimit-remaining": f"{float(remaining)}", "x-ratelimit-used": str(min(used, limit)),
                   "x-ratelimit-reset": str(max(int(start + window - now), 0))}
        return headers, used > limit

    def _route(self, path: str, query: dict[str, str]) -> Reply:
        parts = path.strip("/").split("/")
        if parts[0] == "r" and len(parts) == 3 and parts[2] in ("new", "comments", "search"):
            subs, problem = self._subreddits(parts[1])
            if problem:
                return problem
            if parts[2] == "search":
                restrict = query.get("restrict_sr", "").lower() in ("1", "true", "on")
                return self._listing(self._search(query.get("q", ""), subs if restrict else None), query)
            kind = "posts" if parts[2] == "new" else "comments"
            names = [n for sub in subs for n in getattr(sub, kind)]
            return self._listing(sorted(names, key=lambda n: int(n[3:], 36), reverse=True), query)
        if parts == ["search"]:
            return self._listing(self._search(query.get("q", ""), None), query)
        if parts[0] in ("user", "u") and len(parts) == 3 and parts[2] == "comments":
            return self._user_comments(parts[1], query)
        if parts[0] == "comments" and len(parts) >= 2:
            return self._comments_tree(parts[1], query)
        if parts == ["api", "info"]:
            names = [n for n in query.get("id", "").split(",") if n in self.items]
            return Reply.json(self._page([self.items[n] for n in names], None, None))
        return Reply.json({"message": "Not Found", "error": 404}, 404)

    def _user_comments(self, username: str, query: dict[str, str]) -> Reply:
        """`/user/<name>/comments` (sort=new): the user's comments still listed, newest first; 404 for a
        name in `missing_users` (Reddit's answer for a deleted or suspended account)."""
        name = username.casefold()
        if name in self.missing_users:
            return Reply.json({"message": "Not Found", "error": 404}, 404)
        listed = {n for sub in self.subreddits.values() if sub.status == "public" for n in sub.comments}
        names = [n for n in listed if str(self.items[n].get("author", "")).casefold() == name]
        return self._listing(sorted(names, key=lambda n: (self.items[n]["created_utc"], int(n[3:], 36)), reverse=True),
                             query)

    def _subreddits(self, spec: str) -> tuple[list[Subreddit], Reply | None]:
        subs = []
        for name in spec.split("+"):
            if name.lower() == "all":
                subs.extend(s for s in self.subreddits.values() if s.status == "public")
                continue
            sub = self.subreddits.get(name.lower())
            if sub is None:
                return [], Reply(302, b"{}", {"Content-Type": "application/json; charset=UTF-8",
                                              "Location": f"/subreddits/search?q={name}"})
            if sub.status == "banned":
                return [], Reply.json({"reason": "banned", "message": "Not Found", "error": 404}, 404)
            if sub.status in ("private", "quarantined"):
                return [], Reply.json({"reason": sub.status, "message": "Forbidden", "error": 403}, 403)
            subs.append(sub)
        return subs, None

    def _search(self, q: str, subs: list[Subreddit] | None) -> list[str]:
        pool = [n for s in (subs if subs is not None else self.subreddits.values())
                if s.status == "public" for n in s.posts]
        hits = [n for n in pool if _search_hit(q, f"{self.items[n]['title']} {self.items[n]['selftext']}".lower())]
        return sorted(hits, key=lambda n: (self.items[n]["created_utc"], int(n[3:], 36)), reverse=True)

    def _listing(self, names: list[str], query: dict[str, str]) -> Reply:
        """Newest first, at most `listing_cap` deep; `after`/`before` are positions in that list."""
        names = names[: self.listing_cap]
        limit = max(1, min(int(query.get("limit") or 25), 100))
        if query.get("after"):
            if query["after"] not in names:
                return Reply.json(self._page([], None, None))
            start = names.index(query["after"]) + 1
        elif query.get("before"):
            if query["before"] not in names:
                return Reply.json(self._page([], None, None))
            end = names.index(query["before"])
            start = max(end - limit, 0)
            names = names[:end]
        else:
            start = 0
        chosen = names[start:start + limit]
        after = chosen[-1] if chosen and start + limit < len(names) else None
        before = chosen[0] if chosen and start > 0 else None
        return Reply.json(self._page([self.items[n] for n in chosen], after, before))

    @staticmethod
    def _page(items: list[dict], after: str | None, before: str | None) -> dict:
        return {"kind": "Listing", "data": {"after": after, "before": before, "dist": len(items), "modhash": None,
                                            "geo_filter": "", "children": [
                                                {"kind": item["name"][:2], "data": item} for item in items]}}

    def _comments_tree(self, post_id: str, query: dict[str, str]) -> Reply:
        """`/comments/<id>`: [the post, its comment tree], or the subtree of `comment=<id>`."""
        post = self.items.get(f"t3_{post_id}")
        if post is None:
            return Reply.json({"message": "Not Found", "error": 404}, 404)
        _, problem = self._subreddits(post["subreddit"])
        if problem:
            return problem
        depth = int(query.get("depth") or 10)
        budget = [int(query.get("limit") or 200)]
        children: dict[str, list[dict]] = defaultdict(list)
        for item in self.items.values():
            if item.get("link_id") == post["name"]:
                children[item["parent_id"]].append(item)

        def tree(parent: str, level: int) -> dict | str:
            kids = sorted(children.get(parent, []), key=lambda c: c["created_utc"], reverse=True)
            if not kids or level > depth:
                return ""
            out = []
            for kid in kids:
                if budget[0] <= 0:
                    out.append({"kind": "more", "data": {"count": 1, "name": "t1__", "id": "_", "parent_id": parent,
                                                         "depth": level, "children": [kid["id"]]}})
                    break
                budget[0] -= 1
                out.append({"kind": "t1", "data": {**kid, "depth": level, "replies": tree(kid["name"], level + 1)}})
            return {"kind": "Listing", "data": {"after": None, "before": None, "dist": None, "modhash": None,
                                                "geo_filter": "", "children": out}}

        focus = query.get("comment")
        if focus:
            root = self.items.get(f"t1_{focus}")
            if root is None or root.get("link_id") != post["name"]:
                return Reply.json({"message": "Not Found", "error": 404}, 404)
            budget[0] -= 1
            comments = [{"kind": "Listing", "data": {"after": None, "before": None, "children": [
                {"kind": "t1", "data": {**root, "depth": 0, "replies": tree(root["name"], 1)}}]}}]
        else:
            listing = tree(post["name"], 0)
            comments = [listing or {"kind": "Listing", "data": {"after": None, "before": None, "children": []}}]
        return Reply.json([self._page([post], None, None), *comments])


def serve_demo(emulator: RedditEmulator, data: dict, now: datetime) -> dict:
    """Load the demo's sample threads; returns the `reddit:` settings, the sources and the team accounts."""
    emulator.load_sample(data, now.timestamp())
    sub = data["subreddit"]
    platform = {"client_id": emulator.client_id, "client_secret": emulator.client_secret, "oauth_url": emulator.url,
                "reddit_url": emulator.url, "user_agent": "mentionwatch-demo/0.1 (local emulator)"}
    sources = [{"type": "reddit", "name": f"r-{sub}-posts", "what": "posts", "subreddits": [sub], "interval": "30s"},
               {"type": "reddit", "name": f"r-{sub}-comments", "what": "comments", "subreddits": [sub],
                "interval": "30s"},
               {"type": "reddit", "name": "reddit-search", "what": "search", "interval": "30s"}]
    return {"platform": platform, "sources": sources, "team": {"reddit": list(data.get("team", []))}}
