"""X posts as mentionwatch reads them: tweets to posts (one bad item at a time), the default query,
snowflake times, and the queries that find the team's replies. Pure functions."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from typing import Iterable

from connectors.team_replies import SeenReply
from monitor.configbase import BrandTerms
from monitor.core.records import MalformedItem, Post

PLATFORM = "x"
TWITTER_HOST = "https://api.twitter.com"
SEARCH_WINDOW = timedelta(days=7)
WINDOW_MARGIN = timedelta(minutes=2)   # X rejects since_id/start_time even slightly older than 7 days
TWITTER_EPOCH_MS = 1288834974657
QUERY_LIMIT = 512                      # longest query on the self-serve plans
MIN_RESULTS = {"search": 10, "mentions": 5}
TWEET_FIELDS = ["created_at", "author_id", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang"]
USER_FIELDS = ["name", "username", "public_metrics"]
EXPANSIONS = ["author_id"]             # no referenced tweets: each would be billed as one more read
_RT_PREFIX = re.compile(r"^RT @(\w{1,15}): ", re.ASCII)

# --- pure helpers -------------------------------------------------------------------------------

def snowflake_time(tweet_id: str | int) -> datetime:
    """When a tweet id was minted: X ids carry their creation time in milliseconds."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000, tz=timezone.utc)


def next_period(now: datetime) -> datetime:
    """Midnight UTC on the 1st of the next month: when a monthly read cap starts over."""
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=timezone.utc)


def _quoted(term: str) -> str:
    clean = " ".join(term.replace('"', " ").split())
    return clean if re.fullmatch(r"\w+", clean) else f'"{clean}"'


def default_query(brand: BrandTerms) -> str:
    """The brand's terms in X search syntax, without retweets and without its exclusion phrases."""
    terms = [_quoted(t) for t in brand.names + brand.aliases] + brand.handles + brand.hashtags
    terms += [f'url:"{d}"' for d in brand.domains]
    unique = list(dict.fromkeys(terms))
    excluded = "".join(f" -{_quoted(p)}" for p in brand.exclude)
    return f"({' OR '.join(unique)}){excluded} -is:retweet"


def team_handles(brand: BrandTerms) -> frozenset[str]:
    """The brand's own X accounts, lowercased and without `@`."""
    return frozenset(h.lstrip("@").casefold() for h in brand.handles + brand.team.x)


_TWEET_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
_HANDLE = re.compile(r"\w{1,50}", re.ASCII)


def valid_id(value) -> str | None:
    """A tweet or user id as X sends it (a decimal string of a 64-bit number), else None."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return text if _TWEET_ID.fullmatch(text) and int(text) < 2 ** 63 else None


def tweet_to_post(tweet: dict, users: dict[str, dict], team: frozenset[str]) -> Post:
    """One tweet as a Post; a retweet becomes the tweet it retweets (text as the retweet quotes it),
    so both are stored once. A tweet without an id or text raises MalformedItem; other fields of the
    wrong type are left out."""
    tweet_id = valid_id(tweet.get("id"))
    if tweet_id is None:
        raise MalformedItem("no valid id")
    if not isinstance(tweet.get("text"), str):
        raise MalformedItem("no text")
    text = html.unescape(tweet["text"])
    author = users.get(str(tweet.get("author_id")))
    author = author if isinstance(author, dict) else None
    handle = author.get("username") if author else None
    handle = handle if isinstance(handle, str) and _HANDLE.fullmatch(handle) else None
    references = tweet.get("referenced_tweets")
    refs = {r.get("type"): valid_id(r.get("id")) for r in references if isinstance(r, dict) and valid_id(r.get("id"))
            } if isinstance(references, list) else {}
    extra: dict = {"conversation_id": valid_id(tweet.get("conversation_id")) or tweet_id}
    created = parse_time(tweet.get("created_at")) or snowflake_time(tweet_id)
    metrics = author.get("public_metrics") if author else None
    reach = metrics.get("followers_count") if isinstance(metrics, dict) else None
    reach = reach if isinstance(reach, int) and not isinstance(reach, bool) else None
    if "retweeted" in refs:
        retweeter, tweet_id = handle, refs["retweeted"]
        rt = _RT_PREFIX.match(text)
        handle, text = (rt.group(1), text[rt.end():]) if rt else (None, text)
        extra = {"conversation_id": tweet_id, **({"retweeted_by": f"@{retweeter}"} if retweeter else {})}
        created, reach, author = snowflake_time(tweet_id), None, None
    if author:
        extra["author_name"] = author.get("name") if isinstance(author.get("name"), str) else None
        extra["author_id"] = str(author.get("id"))
    if valid_id(tweet.get("in_reply_to_user_id")):
        extra["in_reply_to_user_id"] = str(tweet["in_reply_to_user_id"])
    if refs.get("quoted"):
        extra["quoted_id"] = refs["quoted"]
    if isinstance(tweet.get("lang"), str):
        extra["lang"] = tweet["lang"]
    if handle and handle.casefold() in team:
        extra["by_team"] = True
    url = f"https://x.com/{handle}/status/{tweet_id}" if handle else f"https://x.com/i/web/status/{tweet_id}"
    return Post(source=PLATFORM, external_id=tweet_id, text=text, url=url, author=f"@{handle}" if handle else None,
                created_at=created, thread_id=extra["conversation_id"], parent_id=refs.get("replied_to"),
                reach=reach, extra=extra)


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def to_posts(tweets: list, users: dict[str, dict], team: frozenset[str]) -> tuple[list[Post], list[str]]:
    """Each tweet judged alone: the posts, and "id: why" for each one left out as malformed."""
    posts, skipped = [], []
    for tweet in tweets:
        try:
            posts.append(tweet_to_post(tweet, users, team))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            tweet_id = tweet.get("id") if isinstance(tweet, dict) else None
            why = str(exc) if isinstance(exc, MalformedItem) else type(exc).__name__
            skipped.append(f"tweet {str(tweet_id)[:40] if tweet_id is not None else '?'}: {why}")
    return posts, skipped


def team_reply_queries(team: Iterable[str], limit: int = QUERY_LIMIT) -> list[str]:
    """`(from:a OR from:b) is:reply`: the team accounts' replies, as few queries as fit X's query length."""
    groups: list[list[str]] = []
    for handle in sorted(team):
        if groups and len(_replies_by(groups[-1] + [handle])) <= limit:
            groups[-1].append(handle)
        else:
            groups.append([handle])
    return [_replies_by(group) for group in groups]


def _replies_by(handles: list[str]) -> str:
    return f"({' OR '.join(f'from:{h}' for h in handles)}) is:reply"


def seen_reply(post: Post) -> SeenReply:
    return SeenReply(post.external_id, post.thread_id, post.parent_id, post.author or "", post.created_at, post.url)


