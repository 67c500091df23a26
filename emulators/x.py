"""X API v2 server: recent search, a user's mentions and user lookup by username.

Wire details follow the recorded responses in shared/fixtures/twitter (`*.responses.json`) and
shared/docs/platform-notes.md section 2: ids as strings, `edit_history_tweet_ids` on every tweet,
text HTML-escaped (`&amp;`, `&lt;`, `&gt;`), `includes.users` for `expansions=author_id`, `meta`
with `newest_id`/`oldest_id`/`result_count`/`next_token` (only `result_count` when empty), and
`x-rate-limit-limit/remaining/reset` on every response. It honours `since_id`, `until_id`,
`start_time`, `next_token`/`pagination_token`, `max_results`, the 7-day search window and a subset
of the query language (phrases, OR, parentheses, negation, @, #, from:, to:, conversation_id:,
is:retweet/reply/quote, url:, lang:). Faults are scripted per endpoint; `replay` serves a recorded
fixture verbatim.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import re
import threading
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from emulators.server import Emulator, Reply, Request

TWITTER_EPOCH_MS = 1288834974657
SEARCH_WINDOW = timedelta(days=7)
MENTIONS_DEPTH = 800                   # the mentions timeline reaches back 800 tweets
WINDOW_SECONDS = 15 * 60
LIMITS = {"search": 450, "mentions": 450, "users": 300}   # app auth; search and mentions as recorded
ENDPOINTS = {"search": (10, 100, 10), "mentions": (5, 100, 10)}  # max_results: min, max, default
QUERY_LIMIT = 512
OPERATORS = {"from", "to", "conversation_id", "is", "url", "lang"}

TOO_MANY_REQUESTS = {"title": "Too Many Requests", "type": "about:blank", "status": 429, "detail": "Too Many Requests"}
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
CLIENT_NOT_ENROLLED = {
    "client_id": "29462516",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a "
              "Twitter developer App that is attached to a Project. You can create a project via the developer "
              "portal.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def api_escape(text: str) -> str:
    """What X does to tweet text: `&`, `<` and `>` arrive as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _when(tweet_id: int) -> datetime:
    return datetime.fromtimestamp(((tweet_id >> 22) + TWITTER_EPOCH_MS) / 1000, tz=timezone.utc)


def invalid_request(parameter: str, value: str, message: str) -> Reply:
    return Reply.json({"errors": [{"parameters": {parameter: [value]}, "message": message}],
                       "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                       "type": "https://api.twitter.com/2/problems/invalid-request"}, 400)


def rate_limited(reset: float) -> Reply:
    """The real 429: problem JSON, no remaining calls, and when the window resets (epoch seconds)."""
    return Reply.json(TOO_MANY_REQUESTS, 429, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(reset))})


def not_found(kind: str, parameter: str, value: str) -> dict:
    return {"errors": [{"value": value, "detail": f"Could not find {kind} with {parameter}: [{value}].",
                        "title": "Not Found Error", "resource_type": kind, "parameter": parameter,
                        "resource_id": value, "type": "https://api.twitter.com/2/problems/resource-not-found"}]}


# --- the query language -------------------------------------------------------------------------

class QueryError(ValueError):
    pass


_TOKEN = re.compile(r'\s*(-?)(\(|\)|"[^"]*"|[^\s()"]+:"[^"]*"|[^\s()"]+)')


def parse_query(query: str):
    """X search syntax as a tree: ("or", [...]), ("and", [...]), ("not", node), ("atom", text)."""
    tokens, pos = [], 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if not match:
            if query[pos:].strip():
                raise QueryError(f"Unbalanced quote (at position {pos + 1})")
            break
        tokens.append((match.group(1) == "-", match.group(2), match.start(2) + 1))
        pos = match.end()
    items = iter(tokens + [(False, None, len(query) + 1)])
    current = [next(items)]

    def peek():
        return current[0]

    def advance():
        current[0] = next(items)

    def parse_or():
        terms = [parse_and()]
        while peek()[1] == "OR" and not peek()[0]:
            advance()
            terms.append(parse_and())
        return ("or", terms)

    def parse_and():
        factors = []
        while peek()[1] not in (None, ")") and not (peek()[1] == "OR" and not peek()[0]):
            factors.append(parse_factor())
        if not factors:
            raise QueryError(f"Expected a term (at position {peek()[2]})")
        if all(f[0] == "not" for f in factors):
            raise QueryError(f"Ambiguous use of negation: a group needs a positive term (at position {peek()[2]})")
        return ("and", factors)

    def parse_factor():
        negated, text, where = peek()
        advance()
        if text == "(":
            node = parse_or()
            if peek()[1] != ")":
                raise QueryError(f"Missing closing parenthesis (at position {where})")
            advance()
        elif text == ")":
            raise QueryError(f"Unexpected closing parenthesis (at position {where})")
        else:
            operator = text.split(":", 1)[0] if ":" in text and not text.startswith('"') else None
            if operator is not None and operator not in OPERATORS:
                raise QueryError(f"Reference to invalid operator '{operator}'. Operator is not available in "
                                 f"current product or product packaging. (at position {where})")
            node = ("atom", text)
        return ("not", node) if negated else node

    tree = parse_or()
    if peek()[1] is not None:
        raise QueryError(f"Unexpected closing parenthesis (at position {peek()[2]})")
    return tree


def _word(pattern: str, text: str) -> bool:
    return re.search(rf"(?<![\w@#]){re.escape(pattern)}(?!\w)", text) is not None


class XEmulator(Emulator):
    def __init__(self, bearer_token: str = "x-test-bearer", clock: Callable[[], datetime] = _utcnow) -> None:
        super().__init__()
        # Headers and body go out in two writes: without TCP_NODELAY the body waits ~40 ms for the
        # client's delayed ACK on every response.
        self.server.RequestHandlerClass.disable_nagle_algorithm = True
        self.bearer_token = bearer_token
        self.clock = clock
        self._lock = threading.Lock()
        self.users: dict[str, dict] = {}
        self._by_name: dict[str, str] = {}
        self.tweets: dict[int, dict] = {}
        self.faults: dict[str, deque] = defaultdict(deque)
        self.requests: list[tuple[str, Request]] = []
        self.served = 0                    # posts returned in `data`: what X would bill as reads
        self._limits: dict[str, list[float]] = {}
        self._tokens: dict[str, tuple[str, int]] = {}
        self._ids = itertools.count(1)
        self._ordered: list[dict] | None = None          # every tweet, newest first
        self._mentions: dict[str, list[dict]] = {}        # user id -> their mentions timeline

    # --- content ---

    def add_user(self, username: str, name: str | None = None, followers: int = 0, user_id: str | None = None) -> str:
        with self._lock:
            user_id = user_id or str(2_000_000_000 + next(self._ids))
            self.users[user_id] = {"id": user_id, "name": name or username, "username": username,
                                   "public_metrics": {"followers_count": followers, "following_count": 10,
                                                      "tweet_count": 100, "listed_count": 0}}
            self._by_name[username.casefold()] = user_id
            return user_id

    def user_by_name(self, username: str) -> dict | None:
        user_id = self._by_name.get(username.casefold())
        return self.users[user_id] if user_id else None

    def post(self, username: str, text: str, *, at: datetime | None = None, reply_to: str | None = None,
             retweet_of: str | None = None, quote_of: str | None = None, lang: str = "en",
             escaped: bool = False) -> str:
        """Publish a tweet; its text is escaped as the API does unless it comes `escaped` already."""
        author = self.user_by_name(username) or self.users[self.add_user(username)]
        at = at or self.clock()
        with self._lock:
            ms = int(at.timestamp() * 1000) - TWITTER_EPOCH_MS
            tweet_id = (ms << 22) | (next(self._ids) & 0x3FFFFF)
            tweet = {"id": str(tweet_id), "text": text if escaped else api_escape(text), "author_id": author["id"],
                     "created_at": _iso(at), "conversation_id": str(tweet_id), "lang": lang,
                     "edit_history_tweet_ids": [str(tweet_id)]}
            refs = []
            if reply_to:
                parent = self.tweets[int(reply_to)]
                tweet["conversation_id"] = parent["conversation_id"]
                tweet["in_reply_to_user_id"] = parent["author_id"]
                refs.append({"type": "replied_to", "id": str(reply_to)})
            if retweet_of:
                original = self.tweets[int(retweet_of)]
                by = self.users[original["author_id"]]["username"]
                tweet["text"] = api_escape(f"RT @{by}: " + _unescape(original["text"]))
                refs.append({"type": "retweeted", "id": str(retweet_of)})
            if quote_of:
                refs.append({"type": "quoted", "id": str(quote_of)})
            if refs:
                tweet["referenced_tweets"] = refs
            self.tweets[tweet_id] = tweet
            self._ordered, self._mentions = None, {}
            return str(tweet_id)

    # --- scripting ---

    def fail(self, endpoint: str, reply: Reply, times: int = 1, after: int = 0) -> None:
        """The `times` requests to `endpoint` after the next `after` ones get `reply` instead."""
        with self._lock:
            self.faults[endpoint].extend([None] * after + [reply] * times)

    def set_rate_limit(self, endpoint: str, remaining: int, reset_in: float = WINDOW_SECONDS) -> None:
        with self._lock:
            self._limits[endpoint] = [remaining, self.clock().timestamp() + reset_in]

    def replay(self, endpoint: str, fixture: Path, index: int = 0) -> None:
        """Serve a recorded response (a `*.responses.json` entry or a twarc JSON page) next."""
        raw = json.loads(fixture.read_text(encoding="utf-8"))
        entry = raw[index] if isinstance(raw, list) else {"status": 200, "body": raw, "rate_limit_headers": {}}
        body = {k: v for k, v in entry["body"].items() if k != "__twarc"}
        self.fail(endpoint, Reply.json(body, entry.get("status", 200), entry.get("rate_limit_headers") or {}))

    def hits(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for name, _ in self.requests if name == endpoint)

    def queries(self, endpoint: str = "search") -> list[dict]:
        with self._lock:
            return [r.query for name, r in self.requests if name == endpoint]

    # --- serving ---

    def handle(self, request: Request) -> Reply:
        endpoint, arg = self._route(request.path)
        with self._lock:
            self.requests.append((endpoint, request))
            headers = self._rate_headers(endpoint)
            fault = self.faults[endpoint].popleft() if self.faults[endpoint] else None
            if isinstance(fault, Reply):
                return Reply(fault.status, fault.body, {**headers, **fault.headers}, fault.stall, fault.drop,
                             fault.drip)
            if request.headers.get("authorization") != f"Bearer {self.bearer_token}":
                return Reply.json(UNAUTHORIZED, 401, headers)
            if endpoint != "other" and int(headers["x-rate-limit-remaining"]) < 0:
                headers["x-rate-limit-remaining"] = "0"
                return Reply.json(TOO_MANY_REQUESTS, 429, headers)
            if endpoint == "users":
                user = self.user_by_name(arg)
                body = {"data": {k: user[k] for k in ("id", "name", "username")}} if user else \
                    not_found("user", "username", arg)
                return Reply.json(body, 200, headers)
            if endpoint == "other":
                return Reply.json({"title": "Not Found", "type": "about:blank", "status": 404,
                                   "detail": "Not Found"}, 404, headers)
            reply = self._timeline(endpoint, arg, request.query)
            reply.headers.update(headers)
            return reply

    @staticmethod
    def _route(path: str) -> tuple[str, str]:
        if path == "/2/tweets/search/recent":
            return "search", ""
        match = re.fullmatch(r"/2/users/(\d+)/mentions", path)
        if match:
            return "mentions", match.group(1)
        match = re.fullmatch(r"/2/users/by/username/(\w{1,15})", path)
        if match:
            return "users", match.group(1)
        return "other", ""

    def _rate_headers(self, endpoint: str) -> dict[str, str]:
        """Count this request against its 15-minute window; remaining < 0 means over the limit."""
        limit = LIMITS.get(endpoint, 900)
        now = self.clock().timestamp()
        state = self._limits.get(endpoint)
        if state is None or now >= state[1]:
            state = self._limits[endpoint] = [limit, now + WINDOW_SECONDS]
        state[0] -= 1
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(int(state[0])),
                "x-rate-limit-reset": str(int(state[1]))}

    def _timeline(self, endpoint: str, user_id: str, params: dict) -> Reply:
        low, high, default = ENDPOINTS[endpoint]
        now = self.clock()
        try:
            size = int(params.get("max_results", default))
        except ValueError:
            size = -1
        if not low <= size <= high:
            return invalid_request("max_results", params.get("max_results", ""),
                                   f"The `max_results` query parameter value [{params.get('max_results')}] is not "
                                   f"between {low} and {high}")
        since = int(params["since_id"]) if params.get("since_id", "").isdigit() else None
        start_time = self._time(params["start_time"]) if params.get("start_time") and since is None else None
        tree = None
        if endpoint == "search":
            query = params.get("query", "")
            if not query or len(query) > QUERY_LIMIT:
                return invalid_request("query", query, f"There were errors processing your request: Query "
                                       f"length must be between 1 and {QUERY_LIMIT} characters")
            try:
                tree = parse_query(query)
            except QueryError as exc:
                return invalid_request("query", query, f"There were errors processing your request: {exc}")
            edge = now - SEARCH_WINDOW
            for name in ("since_id", "until_id"):
                if params.get(name) and (not params[name].isdigit() or _when(int(params[name])) < edge):
                    return invalid_request(name, params[name], f"Invalid '{name}':'{params[name]}'. '{name}' must be "
                                           f"a tweet id created after {edge:%Y-%m-%dT%H:%MZ}.")
            if params.get("start_time") and self._time(params["start_time"]) < edge:
                return invalid_request("start_time", params["start_time"],
                                       f"Invalid 'start_time':'{params['start_time']}'. 'start_time' must be on or "
                                       f"after {edge:%Y-%m-%dT%H:%MZ}")
            start_time = max(start_time or edge, edge)
            ordered = self._newest_first()
        else:
            user = self.users.get(user_id)
            if user is None:
                return Reply.json(not_found("user", "id", user_id))
            ordered = self._mentions_of(user)
        fingerprint = hashlib.sha1(json.dumps([endpoint, user_id] + [params.get(k) for k in (
            "query", "since_id", "until_id", "start_time")]).encode()).hexdigest()[:12]
        token_name = "next_token" if endpoint == "search" else "pagination_token"
        token = params.get(token_name)
        uppers = [int(params["until_id"])] if params.get("until_id", "").isdigit() else []
        if token:
            saved = self._tokens.get(token)
            if saved is None or saved[0] != fingerprint:
                return invalid_request(token_name, token, f"The `{token_name}` query parameter value [{token}] "
                                       "is not valid for this request")
            uppers.append(saved[1])
        first = 0
        if uppers:
            keys = [-int(t["id"]) for t in ordered]
            first = bisect.bisect_right(keys, -min(uppers))
        picked: list[dict] = []
        for tweet in itertools.islice(ordered, first, None):
            tweet_id = int(tweet["id"])
            if (since is not None and tweet_id <= since) or (start_time and _when(tweet_id) < start_time):
                break
            if tree is None or self._matches(tree, tweet):
                picked.append(tweet)
                if len(picked) > size:
                    break
        page = picked[:size]
        if not page:
            return Reply.json({"meta": {"result_count": 0}})
        self.served += len(page)
        meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        if len(picked) > size:
            next_token = hashlib.sha1(f"{fingerprint}:{page[-1]['id']}".encode()).hexdigest()[:27]
            self._tokens[next_token] = (fingerprint, int(page[-1]["id"]))
            meta["next_token"] = next_token
        body: dict = {"data": [self._shape_tweet(t, params) for t in page]}
        if "author_id" in params.get("expansions", "").split(","):
            fields = set(params.get("user.fields", "").split(",")) | {"id", "name", "username"}
            authors = dict.fromkeys(t["author_id"] for t in page)
            body["includes"] = {"users": [{k: v for k, v in self.users[a].items() if k in fields} for a in authors]}
        body["meta"] = meta
        return Reply.json(body)

    def _newest_first(self) -> list[dict]:
        if self._ordered is None:
            self._ordered = sorted(self.tweets.values(), key=lambda t: int(t["id"]), reverse=True)
        return self._ordered

    def _mentions_of(self, user: dict) -> list[dict]:
        """The user's mentions timeline: the 800 newest tweets that @-mention them."""
        if user["id"] not in self._mentions:
            handle = "@" + user["username"].casefold()
            self._mentions[user["id"]] = list(itertools.islice(
                (t for t in self._newest_first() if _word(handle, _unescape(t["text"]).casefold())), MENTIONS_DEPTH))
        return self._mentions[user["id"]]

    @staticmethod
    def _time(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    @staticmethod
    def _shape_tweet(tweet: dict, params: dict) -> dict:
        fields = set(params.get("tweet.fields", "").split(",")) | {"id", "text", "edit_history_tweet_ids"}
        return {k: v for k, v in tweet.items() if k in fields}

    def _matches(self, node, tweet: dict) -> bool:
        kind, value = node
        if kind == "or":
            return any(self._matches(n, tweet) for n in value)
        if kind == "and":
            return all(self._matches(n, tweet) for n in value)
        if kind == "not":
            return not self._matches(value, tweet)
        return self._atom(value, tweet)

    def _atom(self, atom: str, tweet: dict) -> bool:
        text = _unescape(tweet["text"]).casefold()
        refs = {r["type"] for r in tweet.get("referenced_tweets", [])}
        if atom.startswith('"'):
            return _word(atom.strip('"').casefold(), text)
        if ":" in atom:
            operator, value = atom.split(":", 1)
            value = value.strip('"').casefold()
            author = self.users.get(tweet["author_id"], {})
            if operator == "from":
                return author.get("username", "").casefold() == value.lstrip("@")
            if operator == "to":
                target = self.user_by_name(value.lstrip("@"))
                return target is not None and tweet.get("in_reply_to_user_id") == target["id"]
            if operator == "conversation_id":
                return tweet.get("conversation_id") == value
            if operator == "is":
                return {"retweet": "retweeted", "reply": "replied_to", "quote": "quoted"}.get(value) in refs
            if operator == "url":
                return value in text
            if operator == "lang":
                return tweet.get("lang") == value
        return _word(atom.casefold(), text)


def serve_demo(emulator: XEmulator, data: dict, now: datetime) -> dict:
    """Publish the demo's sample users and tweets (text as the API sends it); returns the platform
    settings and a source."""
    for user in data["users"]:
        emulator.add_user(user["username"], user["name"], user["followers"])
    ids: dict[str, str] = {}
    for tweet in sorted(data["tweets"], key=lambda t: -t["age"]):
        ids[tweet["key"]] = emulator.post(tweet["user"], tweet["text"], at=now - timedelta(minutes=tweet["age"]),
                                          reply_to=ids.get(tweet.get("reply_to", "")), escaped=True)
    return {"platform": {"bearer_token": "${DEMO_X_TOKEN:-" + emulator.bearer_token + "}", "base_url": emulator.url},
            "sources": [{"type": "x", "name": "x", "interval": "10s"}]}
