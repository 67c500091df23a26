"""End to end: feed entries -> fetch -> match -> store -> classify (lexicon) -> alert rules -> Slack.

Run: `python benchmarks/pipeline.py [--entries 10000] [--feeds 20] [--once] [--profile]`.
The real daemon runs against the local feeds and Slack emulators and a temporary SQLite file,
exactly as `mentionwatch demo` does, until every mention is classified, routed and every alert
delivered. Target: >= 500 mentions/s end to end.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import yaml  # noqa: E402

from emulators.feeds import FeedsEmulator, render_rss  # noqa: E402
from emulators.server import wait_until  # noqa: E402
from emulators.slack import SlackEmulator  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.daemon import Daemon  # noqa: E402
from monitor.core.logs import setup_logging  # noqa: E402

TARGET_MENTIONS_PER_S = 500
TOKEN = "xoxb-benchmark-not-a-real-token"
CHANNEL = "#acme-mentions"
# (share, template): about 90 % name the brand; the lexicon sends complaints, questions and
# negative posts to Slack, so roughly half of the mentions alert.
TEMPLATES = [
    (0.20, "Acme Cloud charged me twice and ignored my ticket {n}. Awful service, angry and disappointed"),
    (0.15, "Does anyone know how to export backups from Acme Cloud before the trial ends? ({n})"),
    (0.10, "Deploys to acme.io failing again with quota errors, this is costing us sales (build {n})"),
    (0.25, "Two years on Acme Cloud and zero downtime, the team is fantastic and friendly. Thanks! #{n}"),
    (0.20, "Acme Cloud published release notes for version {n} of the CLI today"),
    (0.10, "Comparing six object storage providers on egress fees, part {n} of our series"),
]


def entries_for(feed: int, count: int, rng: random.Random, now: datetime) -> list[dict]:
    shares, texts = zip(*TEMPLATES)
    items = []
    for i in range(count):
        text = rng.choices(texts, shares)[0].format(n=feed * count + i)
        items.append({"id": f"urn:bench:{feed}:{i}", "title": text[:60], "description": text,
                      "author": f"user{rng.randrange(10_000)}", "published": now - timedelta(minutes=i % 120),
                      "link": f"https://news{feed}.example.com/posts/{i}"})
    return items


def config(urls: list[str], slack_url: str, db_path: Path, per_feed: int) -> dict:
    return {
        "storage": {"url": f"sqlite:///{db_path}"},
        "slack": {"token": TOKEN, "base_url": slack_url},
        "classifier": {"kind": "lexicon"},
        "daemon": {"process_interval": "1s"},
        "routes": {"group_wait": "0s", "group_interval": "0s"},  # measure the pipeline, not the grouping timers
        "feeds": {"max_entries": per_feed},
        "brands": {"acme": {"names": ["Acme Cloud", "AcmeCloud"], "aliases": ["Acme"], "domains": ["acme.io"],
                            "exclude": ["acme anvil"], "slack_channel": CHANNEL, "reply_within": "2h",
                            "sources": [{"type": "feed", "name": f"feed{i}", "url": url, "interval": "1h"}
                                        for i, url in enumerate(urls)]}},
    }


def settled(daemon: Daemon) -> bool:
    """Every source polled, every mention classified, routed and grouped, and the outbox empty."""
    store = daemon.store
    counts = store.alert_counts()
    return (all(store.get_health(sid).last_success_at for sid in daemon.pipeline.sources)
            and not store.unclassified(1) and not store.unrouted(1)
            and not store.notification_counts().get("waiting")
            and not counts.get("pending") and not counts.get("sending"))


def run(daemon: Daemon, once: bool) -> bool:
    if once:
        daemon.run_once()
        return settled(daemon)
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    ok = wait_until(lambda: settled(daemon), timeout=600, interval=0.2)
    daemon.stop_event.set()
    runner.join(30)
    return ok


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def report(db_path: Path, entries: int, seconds: float, slack: SlackEmulator) -> None:
    with sqlite3.connect(db_path) as db:
        mentions, first_fetch, last_routed = db.execute(
            "SELECT count(*), min(fetched_at), max(routed_at) FROM mentions").fetchone()
        sent, last_sent = db.execute("SELECT count(*), max(sent_at) FROM alerts WHERE state = 'sent'").fetchone()
        pairs = db.execute("SELECT m.fetched_at, a.sent_at FROM notifications n JOIN alerts a ON a.id = n.alert_id "
                           "JOIN mentions m ON m.id = n.mention_id WHERE a.state = 'sent'").fetchall()
        alerted = db.execute("SELECT count(DISTINCT mention_id) FROM notifications").fetchone()[0]
    latencies = [seconds_between(fetched, sent_at) for fetched, sent_at in pairs]
    routed_after = seconds_between(first_fetch, last_routed)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = mentions / seconds
    print(f"entries:              {entries:,}")
    print(f"mentions stored:      {mentions:,}")
    print(f"alerts:               {alerted:,} mentions alerted in {sent:,} Slack messages "
          f"(the emulator received {len(slack.posted()):,})")
    print(f"total wall time:      {seconds:.2f} s")
    print(f"throughput:           {rate:,.0f} mentions/s end to end "
          f"({'meets' if rate >= TARGET_MENTIONS_PER_S else 'MISSES'} the {TARGET_MENTIONS_PER_S}/s target)")
    print(f"fetch -> Slack:       p50 {percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s")
    print(f"phases (from the DB): all stored, classified and routed {routed_after:.2f} s after the first fetch "
          f"({mentions / routed_after:,.0f} mentions/s); outbox drained after "
          f"{seconds_between(first_fetch, last_sent):.2f} s")
    print(f"peak RSS:             {peak_mb:,.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--once", action="store_true", help="Daemon.run_once() instead of the scheduled daemon")
    parser.add_argument("--profile", action="store_true",
                        help="profile Daemon.run_once() (implies --once) and print the top functions")
    args = parser.parse_args()
    args.once = args.once or args.profile
    per_feed = -(-args.entries // args.feeds)
    setup_logging("WARNING")
    rng = random.Random(42)
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="mentionwatch-bench-") as tmp, \
            FeedsEmulator() as feeds, SlackEmulator() as slack:
        workdir = Path(tmp)
        urls = []
        for feed in range(args.feeds):
            count = min(per_feed, args.entries - feed * per_feed)
            name = f"feed{feed}"
            feeds.set_feed(name, render_rss(name, f"https://news{feed}.example.com/",
                                            entries_for(feed, count, rng, now)))
            urls.append(feeds.url_for(name))
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config(urls, slack.api_url, workdir / "bench.db", per_feed)))
        settings, _ = load_settings(config_path)
        daemon = Daemon(str(config_path), settings)
        profiler = cProfile.Profile() if args.profile else None
        mode = "Daemon.run_once()" if args.once else f"Daemon.run() with {settings.daemon.workers} workers"
        print(f"{args.entries:,} entries in {args.feeds} feeds, {mode}, lexicon classifier, SQLite, "
              f"Slack emulator")
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        ok = run(daemon, args.once)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - start
        daemon.store.close()
        report(workdir / "bench.db", args.entries, seconds, slack)
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    if not ok:
        print("did not settle: some mentions were not classified, routed or delivered", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
