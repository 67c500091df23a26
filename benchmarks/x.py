"""X connector throughput: tweets/s through tweepy, the connector and the matcher into the store,
and the post reads X would bill per 1,000 mentions stored.

Run: `python benchmarks/x.py [--tweets 20000] [--max-results 100] [--max-pages 50]`.
The X emulator (in this process, on loopback) holds the tweets; the real pipeline polls one X
source (recent search plus the brand handle's mentions timeline) into a temporary SQLite file until
it has caught up. Reads are what the connector counted in the store, cross-checked with the posts
the emulator served. The emulator's own time is reported apart: it shares the process and the CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import yaml  # noqa: E402

from emulators.x import XEmulator  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.daemon import build_pipeline  # noqa: E402
from monitor.core.logs import setup_logging  # noqa: E402
from monitor.store import Store  # noqa: E402

BEARER = "x-benchmark-not-a-real-token"
# (share, template): what the search and the mentions timeline see. Tweets naming @acmecloud are in
# both and read twice; retweets reach us only through the mentions timeline (the search excludes
# them) and are stored as the tweet they retweet; exclusions and chatter are never read.
TEMPLATES = [
    (0.45, "Acme Cloud deploys are slow again today, build {n} took ages &amp; nobody answers"),
    (0.20, "@acmecloud can you help with ticket {n}? The dashboard shows a 502 <again>"),
    (0.10, "Loving the new Acme Cloud CLI, release {n} fixed our pipeline"),
    (0.10, "RT"),
    (0.05, "An Acme anvil fell on the coyote in episode {n}"),
    (0.10, "Lunch spot recommendations near the office? ({n})"),
]


class TimedXEmulator(XEmulator):
    """Keeps the seconds spent answering, to tell the emulator's cost from ours."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = 0.0
        self._busy_lock = threading.Lock()

    def handle(self, request):
        started = time.perf_counter()
        try:
            return super().handle(request)
        finally:
            with self._busy_lock:
                self.busy += time.perf_counter() - started


def publish(xapi: XEmulator, count: int, rng: random.Random, now: datetime) -> None:
    shares, texts = zip(*TEMPLATES)
    users = [f"user{i}" for i in range(500)]
    for name in users:
        xapi.add_user(name, name.title(), rng.randrange(10, 100_000))
    with_handle: list[str] = []
    for i in range(count):
        at = now + timedelta(seconds=i * 3_600 / count)
        text = rng.choices(texts, shares)[0]
        if text == "RT":
            if with_handle:
                xapi.post(rng.choice(users), "", at=at, retweet_of=rng.choice(with_handle))
            continue
        tweet_id = xapi.post(rng.choice(users), text.format(n=i), at=at, escaped=True)
        if "@acmecloud" in text:
            with_handle.append(tweet_id)


def config(xapi: XEmulator, db: Path, max_results: int, max_pages: int) -> dict:
    return {
        "storage": {"url": f"sqlite:///{db}"},
        "slack": {"token": "xoxb-benchmark", "base_url": "http://127.0.0.1:9/api/"},
        "x": {"bearer_token": BEARER, "base_url": xapi.url, "monthly_read_cap": 10_000_000,
              "max_results": max_results, "max_pages": max_pages},
        "brands": {"acme": {"names": ["Acme Cloud"], "handles": ["@acmecloud"], "exclude": ["acme anvil"],
                            "slack_channel": "#acme", "sources": [{"type": "x", "name": "x"}]}},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=20_000)
    parser.add_argument("--max-results", type=int, default=100)
    parser.add_argument("--max-pages", type=int, default=50)
    args = parser.parse_args()
    setup_logging("WARNING")
    now = datetime.now(timezone.utc)
    clock = [now - timedelta(hours=2)]
    with tempfile.TemporaryDirectory(prefix="mentionwatch-bench-x-") as tmp, \
            TimedXEmulator(bearer_token=BEARER, clock=lambda: clock[0]) as xapi:
        xapi.add_user("acmecloud", "Acme Cloud", 48_000)
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config(xapi, Path(tmp) / "bench.db", args.max_results, args.max_pages)))
        settings, _ = load_settings(path)
        store = Store(settings.storage.url)
        pipeline = build_pipeline(settings, store)
        pipeline.clock = pipeline._connectors["acme/x"].clock = xapi.clock
        pipeline.poll("acme/x")  # the source starts watching two hours ago; then the tweets arrive
        publish(xapi, args.tweets, random.Random(42), clock[0] + timedelta(minutes=1))
        clock[0] = now
        fetched, polls = 0, 0
        started = time.perf_counter()
        while True:
            outcome = pipeline.poll("acme/x")
            if outcome.failure is not None:
                print(f"poll failed: {outcome.failure.message}", file=sys.stderr)
                return 1
            polls += 1
            fetched += outcome.fetched
            if outcome.fetched == 0:
                break
        seconds = time.perf_counter() - started
        mentions = sum(1 for _ in store.export_rows(None))
        reads = store.get_usage("x:reads:default", f"{now:%Y-%m}")
        requests = xapi.hits("search") + xapi.hits("mentions") + xapi.hits("users")
        ours = seconds - xapi.busy
        print(f"{args.tweets:,} tweets on the emulator, one X source (search + @acmecloud mentions), "
              f"max_results {args.max_results}, max_pages {args.max_pages}, SQLite")
        print(f"tweets fetched:       {fetched:,} in {polls} polls, {requests} requests")
        print(f"mentions stored:      {mentions:,} (retweets and tweets found twice stored once; "
              f"dropped {dict(store.drop_counts().get('acme/x', {}))})")
        print(f"wall time:            {seconds:.2f} s, of which the emulator answering {xapi.busy:.2f} s")
        print(f"throughput:           {fetched / seconds:,.0f} tweets/s end to end; "
              f"{fetched / ours:,.0f} tweets/s without the emulator's share")
        print(f"reads (X billing):    {reads:,} counted, {xapi.served:,} served by the emulator; "
              f"{1000 * reads / max(mentions, 1):,.0f} reads per 1,000 mentions")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
