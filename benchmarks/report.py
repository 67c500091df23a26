"""`mentionwatch report` over a million stored mentions on SQLite.

Run: `python benchmarks/report.py [--mentions 1000000] [--brands 3] [--days 28] [--by week] [--db PATH]`.
Builds a temporary database through the real schema (migrations, indexes), fills it with mentions
(ids in roughly the order posted, as connectors store them) and one label each in a single
executemany transaction (a tenth of the mentions carry a second, newer label so the newest-label
rule is exercised) and the daily rollup as the v5 migration fills it, then times `monitor.report.build_report`, the function the CLI calls, over
every mention. Target: < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from monitor.config import load_settings  # noqa: E402
from monitor.report import build_report  # noqa: E402
from monitor.store import Store, schema  # noqa: E402

TARGET_S = 2.0
SOURCES = ("reddit", "x", "feed", "hackernews", "app_store")
WORDS = ("login outage slow billing refund crash sync broken support invoice upload timeout error password "
         "update android iphone dashboard export great love thanks fast pricing plan team docs api").split()
SENTIMENTS = ("negative", "neutral", "positive")
INTENTS = ("complaint", "question", "praise", "suggestion", "other")


def _ts(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, mentions: int, brands: list[str], days: int, now: datetime) -> float:
    Store(f"sqlite:///{path}").close()  # the real schema, indexes included
    rng = random.Random(7)
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    span = days * 86400
    mention_rows, label_rows = [], []
    for i in range(1, mentions + 1):
        brand, source = rng.choice(brands), rng.choice(SOURCES)
        # stored in roughly the order posted (a connector fetches within minutes), up to an hour out of order
        created = now - timedelta(seconds=span * (mentions - i) / mentions + rng.randrange(3600))
        text = " ".join(rng.choice(WORDS) for _ in range(12))
        mention_rows.append((i, source, f"{source}:{i}", f"{brand}/{source}", brand, json.dumps({brand: []}),
                             f"https://example.com/{i}", f"user{i % 5000}", None, text, _ts(created), _ts(created),
                             rng.randrange(10_000), "{}", _ts(created), _ts(created)))
        sentiment, intent = rng.choice(SENTIMENTS), rng.choice(INTENTS)
        label_rows.append((i, "lexicon", sentiment, intent, _ts(created)))
        if i % 10 == 0:
            label_rows.append((i, "minilm", rng.choice(SENTIMENTS), rng.choice(INTENTS),
                               _ts(created + timedelta(minutes=1))))
    with conn:
        conn.executemany("INSERT INTO mentions (id, source, external_id, source_id, brand, matched, url, author, "
                         "title, text, created_at, fetched_at, reach, extra, classified_at, routed_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", mention_rows)
        conn.executemany("INSERT INTO labels (mention_id, model, sentiment, sentiment_scores, intent, intent_scores, "
                         "needs_reply, needs_reply_score, language, low_confidence, created_at) "
                         "VALUES (?,?,?,'{}',?,'{}',0,0.0,'en',0,?)", label_rows)
        conn.execute(schema.ROLLUP_FROM_MENTIONS["sqlite"])  # as labelling keeps it (monitor.store.rollup)
        conn.execute(schema.INTENT_FROM_LABELS)  # likewise each mention's newest intent
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--brands", type=int, default=3)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--by", choices=("day", "week"), default="week")
    parser.add_argument("--db", type=Path, help="Keep the database here and reuse it when it exists")
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    brands = [f"brand{i}" for i in range(args.brands)]
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "report.db"
        config = {"storage": {"url": f"sqlite:///{db}"}, "slack": {"token": "xoxb-benchmark"},
                  "brands": {b: {"names": [b.title()], "slack_channel": f"#{b}"} for b in brands}}
        (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config))
        settings, _ = load_settings(Path(tmp) / "config.yaml")
        if not db.exists():
            built = build(db, args.mentions, brands, args.days, now)
            print(f"built {args.mentions:,} mentions with labels in {built:.1f} s")
        store = Store(settings.storage.url)
        timings, cpu = [], []
        for _ in range(3):
            started, started_cpu = time.perf_counter(), time.process_time()
            reports = build_report(store, settings, since=now - timedelta(days=args.days + 2), now=now, by=args.by)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        store.close()
        counted = sum(r.total.volume for r in reports)
        best = min(timings)
        print(f"report over {counted:,} mentions, {len(brands)} brands, by {args.by}: best of 3 {best:.2f} s "
              f"(runs: {', '.join(f'{s:.2f}' for s in timings)}; target < {TARGET_S:.0f} s); CPU time of the best "
              f"run {cpu[timings.index(best)]:.2f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
