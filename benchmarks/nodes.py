"""Pipeline throughput by backend and node count: SQLite (1 node), PostgreSQL (1 node), PostgreSQL (3 nodes).

Run: `python benchmarks/nodes.py [--mentions 50000] [--brands 200] [--postgres URL]` (URL: a server where
a database may be created; default $MENTIONWATCH_TEST_DATABASE_URL, e.g. from `.ci/postgres.sh`).
Each scenario starts real `mentionwatch run` processes (lexicon classifier) against the feeds and Slack
emulators, one feed per brand, and waits until every mention is stored, classified and routed and
the outbox is empty. Printed side by side: mentions/s and alerts/s (Slack messages sent) from the first
fetch to the last send (process start-up excluded; the wall time with it is printed too) and the p95 of
fetch-to-Slack latency (alert sent_at minus its mention's fetched_at), all read from the database.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import torch  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from emulators.feeds import FeedsEmulator, render_rss  # noqa: E402
from emulators.server import wait_until  # noqa: E402
from emulators.slack import SlackEmulator  # noqa: E402

MENTIONWATCH = str(Path(sys.executable).with_name("mentionwatch"))
TOKEN = "xoxb-benchmark-not-a-real-token"
TEXTS = ["{b} charged me twice and ignored my ticket {n}. Awful service, angry and disappointed",
         "Does anyone know how to export backups from {b} before the trial ends? ({n})",
         "Two years on {b} and zero downtime, the team is fantastic and friendly. Thanks! #{n}",
         "{b} published release notes for version {n} of the CLI today"]


def brand_name(i: int) -> str:
    return f"Brandora{i:03d}"


def publish(feeds: FeedsEmulator, brands: int, mentions: int, rng: random.Random) -> list[str]:
    now, per_brand, urls = datetime.now(timezone.utc), -(-mentions // brands), []
    for b in range(brands):
        count = max(0, min(per_brand, mentions - b * per_brand))
        items = [{"id": f"urn:bench:{b}:{i}", "title": f"post {i}", "author": f"user{rng.randrange(9999)}",
                  "description": rng.choice(TEXTS).format(b=brand_name(b), n=i), "published": now - timedelta(seconds=i),
                  "link": f"https://news{b}.example.com/{i}"} for i in range(count)]
        feeds.set_feed(f"b{b}", render_rss(f"b{b}", f"https://news{b}.example.com/", items))
        urls.append(feeds.url_for(f"b{b}"))
    return urls


def config(url: str, urls: list[str], slack_url: str, per_feed: int) -> dict:
    return {
        "storage": {"url": url},
        "slack": {"token": TOKEN, "base_url": slack_url},
        "classifier": {"kind": "lexicon"},
        "daemon": {"process_interval": "1s"},
        "routes": {"group_wait": "0s", "group_interval": "0s"},
        "feeds": {"max_entries": per_feed},
        "brands": {f"brand{b}": {"names": [brand_name(b)], "slack_channel": f"#brand{b}",
                                 "sources": [{"type": "feed", "name": "news", "url": u, "interval": "2s"}]}
                   for b, u in enumerate(urls)},
    }


def one(engine, query: str):
    with engine.connect() as conn:
        return conn.execute(text(query)).scalar()


def settled(engine, mentions: int) -> bool:
    try:
        return (one(engine, "SELECT count(*) FROM mentions WHERE routed_at IS NOT NULL") == mentions
                and one(engine, "SELECT count(*) FROM alerts WHERE state IN ('pending', 'sending')") == 0)
    except Exception:  # noqa: BLE001 - the first node is still creating the tables
        return False


def scenario(url: str, nodes: int, mentions: int, brands: int, tmp: Path) -> dict:
    rng = random.Random(7)
    with FeedsEmulator() as feeds, SlackEmulator() as slack:
        urls = publish(feeds, brands, mentions, rng)
        path = tmp / f"config-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(config(url, urls, slack.api_url, -(-mentions // brands))))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        started = time.perf_counter()
        procs = [subprocess.Popen([MENTIONWATCH, "--log-level", "warning", "run", "--config", str(path)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(nodes)]
        engine = create_engine(url, poolclass=NullPool)
        try:
            ok = wait_until(lambda: settled(engine, mentions), timeout=3600, interval=0.5)
            seconds = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(60)
        with engine.connect() as conn:
            sent = conn.execute(text("SELECT count(*) FROM alerts WHERE state = 'sent'")).scalar()
            first, routed = conn.execute(text("SELECT min(fetched_at), max(routed_at) FROM mentions")).one()
            last_sent = conn.execute(text("SELECT max(sent_at) FROM alerts")).scalar()
            pairs = conn.execute(text("SELECT m.fetched_at, a.sent_at FROM notifications n JOIN alerts a ON "
                                      "a.id = n.alert_id JOIN mentions m ON m.id = n.mention_id "
                                      "WHERE a.state = 'sent'")).all()
        engine.dispose()
    latencies = sorted((_aware(s) - _aware(f)).total_seconds() for f, s in pairs)
    p95 = latencies[min(int(0.95 * len(latencies)), len(latencies) - 1)] if latencies else float("nan")
    busy = (max(_aware(routed), _aware(last_sent or routed)) - _aware(first)).total_seconds()
    return {"ok": ok, "wall (with start-up)": seconds, "first fetch to last send": busy,
            "mentions/s": mentions / busy, "alerts/s": sent / busy, "p95 fetch->Slack": p95, "sent": sent,
            "posted": len(slack.posted())}


def _aware(value) -> datetime:
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def fresh_postgres(server: str) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_postgres(server: str, url: str) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=50_000)
    parser.add_argument("--brands", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get("MENTIONWATCH_TEST_DATABASE_URL"))
    args = parser.parse_args()
    if not args.postgres:
        parser.error("--postgres URL (or MENTIONWATCH_TEST_DATABASE_URL) is needed for the PostgreSQL scenarios")
    print(f"{args.mentions:,} mentions over {args.brands} brands (one feed each), lexicon classifier, "
          f"{os.cpu_count()} CPUs, torch cpu capability {torch.backends.cpu.get_cpu_capability()}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mentionwatch-nodes-") as tmp:
        for label, nodes in (("SQLite, 1 node", 1), ("PostgreSQL, 1 node", 1), ("PostgreSQL, 3 nodes", 3)):
            url = f"sqlite:///{tmp}/bench.db" if label.startswith("SQLite") else fresh_postgres(args.postgres)
            results[label] = scenario(url, nodes, args.mentions, args.brands, Path(tmp))
            if not label.startswith("SQLite"):
                drop_postgres(args.postgres, url)
    print(f"{'':26}" + "".join(f"{label:>22}" for label in results))
    for key, fmt in (("mentions/s", "{:,.0f}"), ("alerts/s", "{:,.1f}"), ("p95 fetch->Slack", "{:,.1f} s"),
                     ("first fetch to last send", "{:,.1f} s"), ("wall (with start-up)", "{:,.1f} s"),
                     ("sent", "{:,}"), ("posted", "{:,}"), ("ok", "{}")):
        print(f"{key:26}" + "".join(f"{fmt.format(r[key]):>22}" for r in results.values()))
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
