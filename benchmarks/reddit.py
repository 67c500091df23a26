"""Reddit: items/s from the emulator through praw, the connector and the matcher into the store, and
Reddit API requests spent per 1,000 mentions.

Run: `python benchmarks/reddit.py [--rounds 10] [--batch 300] [--match-share 0.6]`.
The Reddit emulator serves posts and comments rebuilt from praw's recorded listings
(../shared/fixtures/reddit/); a share of them names the brand. Each round adds `--batch` new posts
and `--batch` new comments to one subreddit, then polls three sources once each through
`Pipeline.poll` (fetch -> match -> store in one transaction, SQLite in a temporary directory):
new posts, new comments, and Reddit search for the brand. The budget is raised so pacing does not
hide the code's speed; requests are counted by the emulator. A second, quiet phase polls with one new
post per poll, the daemon's usual case.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import yaml  # noqa: E402

from emulators.reddit import RedditEmulator, fixture_children  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.daemon import build_pipeline  # noqa: E402
from monitor.store import Store  # noqa: E402

SUB = "webhosting"
BRAND_PHRASES = ["Acme Cloud", "acme.io", "AcmeCloud"]


def templates() -> tuple[list[dict], list[dict]]:
    posts = [c["data"] for name in ("TestSubredditListings.test_new.json", "TestSubredditStreams.test_submissions.json")
             for c in fixture_children(name)]
    comments = [c["data"] for name in ("TestSubredditListings.test_comments.json",
                                       "TestSubredditStreams.test_comments__with_continue_after_id.json")
                for c in fixture_children(name)]
    return posts, comments


def add_batch(emu: RedditEmulator, post_ids: list[str], posts: list[dict], comments: list[dict], batch: int,
              share: float, rng: random.Random) -> None:
    for _ in range(batch):
        t = rng.choice(posts)
        title, text = t.get("title") or "", t.get("selftext") or ""
        if rng.random() < share:
            title = f"{title} ({rng.choice(BRAND_PHRASES)})"
        post_ids.append(emu.add_post(SUB, title, text, t.get("author") or "someone")["name"])
    for _ in range(batch):
        body = rng.choice(comments).get("body") or "ok"
        if rng.random() < share:
            body = f"{body} Anyone tried {rng.choice(BRAND_PHRASES)} for this?"
        emu.add_comment(rng.choice(post_ids[-batch:]), body, "someone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=300, help="new posts and new comments per round")
    parser.add_argument("--match-share", type=float, default=0.6, help="share of items naming the brand")
    parser.add_argument("--quiet-polls", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    posts, comments = templates()
    workdir = Path(tempfile.mkdtemp(prefix="mw-reddit-bench-"))
    with RedditEmulator(client_id="bench-client", ratelimit=(10 ** 9, 600.0)) as emu:
        emu.subreddit(SUB)
        config = {
            "storage": {"url": f"sqlite:///{workdir / 'bench.db'}"},
            "slack": {"token": "xoxb-benchmark-not-a-real-token", "base_url": "http://127.0.0.1:9/"},
            "reddit": {"client_id": emu.client_id, "client_secret": emu.client_secret, "oauth_url": emu.url,
                       "reddit_url": emu.url, "requests_per_minute": 6000},
            "brands": {"acme": {"names": ["Acme Cloud", "AcmeCloud"], "domains": ["acme.io"], "slack_channel": "#a",
                                "sources": [
                                    {"type": "reddit", "name": "posts", "what": "posts", "subreddits": [SUB]},
                                    {"type": "reddit", "name": "comments", "what": "comments", "subreddits": [SUB]},
                                    {"type": "reddit", "name": "search", "what": "search"}]}},
        }
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        settings, _ = load_settings(workdir / "config.yaml")
        store = Store(settings.storage.url)
        pipeline = build_pipeline(settings, store)
        post_ids: list[str] = []
        add_batch(emu, post_ids, posts, comments, 10, args.match_share, rng)
        for source_id in pipeline.sources:  # first polls set the cursors
            pipeline.poll(source_id)
        mentions_before, requests_before = len(list(store.export_rows(None))), emu.api_requests()

        fetched = new = 0
        elapsed = 0.0
        for _ in range(args.rounds):
            add_batch(emu, post_ids, posts, comments, args.batch, args.match_share, rng)
            started = time.perf_counter()
            for source_id in pipeline.sources:
                outcome = pipeline.poll(source_id)
                assert outcome.failure is None, outcome.failure
                fetched += outcome.fetched
                new += len(outcome.new_ids)
            elapsed += time.perf_counter() - started
        requests = emu.api_requests() - requests_before
        gaps = len(store.gaps())
        print(f"burst phase: {args.rounds} rounds x ({args.batch} posts + {args.batch} comments), "
              f"{args.match_share:.0%} naming the brand, 3 sources (posts, comments, search)")
        print(f"  items fetched      {fetched:>8}   ({fetched / elapsed:,.0f} items/s through praw, connector, "
              f"matcher and store)")
        print(f"  mentions stored    {new:>8}   ({new / elapsed:,.0f} mentions/s)")
        print(f"  poll wall time     {elapsed:>8.2f} s")
        print(f"  API requests       {requests:>8}   ({1000 * requests / max(new, 1):.1f} per 1,000 mentions; "
              f"{emu.token_requests()} token requests in all; gaps recorded: {gaps})")

        requests_before, mentions_before = emu.api_requests(), len(list(store.export_rows(None)))
        started = time.perf_counter()
        for i in range(args.quiet_polls):
            emu.add_post(SUB, f"Is Acme Cloud down for anyone else? ({i})", "", "someone")
            for source_id in pipeline.sources:
                pipeline.poll(source_id)
        quiet = time.perf_counter() - started
        stored = len(list(store.export_rows(None))) - mentions_before
        requests = emu.api_requests() - requests_before
        print(f"quiet phase: {args.quiet_polls} rounds, one new post each, 3 sources polled per round")
        print(f"  mentions stored    {stored:>8}   (a post found by both the posts listing and search: stored once)")
        print(f"  API requests       {requests:>8}   ({1000 * requests / max(stored, 1):,.0f} per 1,000 mentions: "
              f"one page per listing per poll)")
        print(f"  poll latency       {1000 * quiet / (args.quiet_polls * 3):>8.1f} ms per poll")
        store.close()


if __name__ == "__main__":
    main()
