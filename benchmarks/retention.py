"""Idle ticks as history grows, and `report` from the daily rollup against the raw GROUP BY.

Run: `python benchmarks/retention.py idle [--sizes 1000,100000,1000000] [--database-url URL]`
     `python benchmarks/retention.py report [--mentions 10000000] [--database-url URL]`

Both build their history in SQL (a recursive CTE on SQLite, generate_series on PostgreSQL) through the
real schema: mentions spread over `--days` (`idle`: as many days as `--per-day` mentions a day make,
so a larger size is a longer history at the same rate), one label each (intents spread within every brand), 1 % alerted (a sent message, a queued
notification and a handled reply clock), the rollup filled as the v5 migration fills it (and each
mention's intent as v8 does). Without `--database-url` each size gets a temporary SQLite file; with one, the database's mentionwatch tables
are dropped and rebuilt (point it at a throwaway database).

`idle` times `Pipeline.process()` with nothing to do (the daemon's tick every `process_interval`; Slack
is the loopback emulator, which the first, untimed tick sends the weekly digests to),
the clock moving 5 s a tick so the trends stage (spikes, digest) runs once a minute as in the daemon,
and prints the figures per size side by side. `report` times `build_report` over every mention (by
week) next to the same counts taken the pre-rollup way, one GROUP BY over the mentions and their
newest labels; `counts (rollup)` is the part of `report` that the rollup replaces (the rest of a
report is complaint terms from the newest 5,000 complaints per brand, response times and gaps).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from emulators.slack import SlackEmulator  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.daemon import build_pipeline  # noqa: E402
from monitor.report import build_report  # noqa: E402
from monitor.store import Store, schema  # noqa: E402
from monitor.store.reports import ReportRepository  # noqa: E402

SOURCES = ("reddit", "x", "feed", "hackernews", "app_store")
SENTIMENTS = ("negative", "neutral", "positive")
INTENTS = ("complaint", "question", "praise", "suggestion", "other")
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _pick(expr: str, values: tuple[str, ...]) -> str:
    return "CASE " + " ".join(f"WHEN ({expr}) % {len(values)} = {i} THEN '{v}'" for i, v in enumerate(values)) + " END"


def build(store: Store, mentions: int, brands: int, days: float) -> float:
    """Mentions, labels, 1 % alerted, and the rollup, in a few INSERT … SELECT statements."""
    pg = store.engine.dialect.name == "postgresql"
    now, span = NOW.timestamp(), days * 86400
    at = f"{now} - ({mentions} - i) * {span / mentions}"
    when = f"to_timestamp({at})" if pg else f"strftime('%Y-%m-%d %H:%M:%f', {at}, 'unixepoch')"
    series = (f"generate_series(1, {mentions}) AS s(i)" if pg else "seq")
    with_seq = "" if pg else f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {mentions}) "
    false = "false" if pg else "0"
    started = time.perf_counter()
    with store.engine.begin() as conn:
        def run(sql: str) -> None:
            conn.execute(text(sql))  # text(): `%` is escaped for psycopg

        run(f"INSERT INTO mentions (id, source, external_id, source_id, brand, matched, url, author, text, created_at, "
            f"fetched_at, reach, extra, classified_at, routed_at, intent) {with_seq}"
            f"SELECT i, {_pick('i', SOURCES)}, 'e' || i, 'brand' || (i % {brands}) || '/' || {_pick('i', SOURCES)}, "
            f"'brand' || (i % {brands}), '{{}}', 'https://example.com/' || i, 'user' || (i % 5000), "
            f"'a post about brand ' || i, {when}, {when}, i % 1000, '{{}}', {when}, {when}, {_pick('i / 20', INTENTS)} "
            f"FROM {series}")  # intent: the label's, below
        run(f"INSERT INTO labels (mention_id, model, sentiment, sentiment_scores, intent, intent_scores, needs_reply, "
            f"needs_reply_score, language, low_confidence, created_at) SELECT id, 'lexicon', "
            f"{_pick('id * 7', SENTIMENTS)}, '{{}}', {_pick('id / 20', INTENTS)}, '{{}}', {false}, 0.0, 'en', {false}, "
            f"fetched_at FROM mentions")
        run("INSERT INTO alerts (id, dedupe_key, kind, mention_id, brand, channel, payload, state, attempts, created_at, "
            "sent_at, slack_channel_id, slack_ts, op, receiver, format) SELECT id, 'm:' || id, 'mention', id, brand, "
            "'#alerts', '{\"text\": \"x\"}', 'sent', 1, fetched_at, fetched_at, 'C1', id || '.0', 'post', 'slack', "
            "'slack' FROM mentions WHERE id % 101 = 0")
        run("INSERT INTO notifications (mention_id, brand, route, channel, group_key, urgent, state, alert_id, "
            f"created_at) SELECT id, brand, 'root', '#alerts', 'root|mention=' || id, {false}, 'queued', id, fetched_at "
            "FROM mentions WHERE id % 101 = 0")
        run("INSERT INTO reply_clock (mention_id, brand, intent, started_at, deadline, state, reminders_sent, closed_at) "
            "SELECT id, brand, 'complaint', fetched_at, fetched_at, 'handled', 0, fetched_at FROM mentions "
            "WHERE id % 101 = 0")
        conn.execute(text(schema.ROLLUP_FROM_MENTIONS[store.engine.dialect.name]))
        if pg:
            run("SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT max(id) FROM mentions)) "
                "FROM (VALUES ('mentions'), ('alerts'), ('notifications')) AS v(t)")
    if pg:  # as autovacuum would; mentionwatch never runs ANALYZE on SQLite, whose plans then use the indexes
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def fresh_store(url: str | None, tmp: Path, name: str) -> tuple[Store, str]:
    """An empty store at the current schema: a new SQLite file, or the PostgreSQL database emptied."""
    if url is None:
        url = f"sqlite:///{tmp / name}.db"
    else:
        store = Store(url)
        schema.metadata.drop_all(store.engine)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS schema_version")
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        store.close()
    return Store(url), url


def settings_for(tmp: Path, url: str, brands: int, slack_url: str = "http://127.0.0.1:9/api/"):
    config = {"storage": {"url": url}, "slack": {"token": "xoxb-benchmark", "base_url": slack_url},
              "brands": {f"brand{i}": {"names": [f"Brand{i}"], "slack_channel": f"#b{i}",
                                       "spikes": {"enabled": True}, "digest": {"enabled": True}}
                         for i in range(brands)}}
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    return load_settings(tmp / "config.yaml")[0]


def idle(args) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, SlackEmulator() as slack:
        for size in args.sizes:
            store, url = fresh_store(args.database_url, Path(tmp), f"idle{size}")
            built = build(store, size, args.brands, max(size / args.per_day, 1 / 24))
            pipeline = build_pipeline(settings_for(Path(tmp), url, args.brands, slack.api_url), store)
            clock = [NOW]
            pipeline.clock = lambda: clock[0]
            pipeline.process()  # warm: the first run reads what the later ones skip (trends once a minute)
            ticks = []
            for _ in range(args.ticks):
                clock[0] += timedelta(seconds=5)
                started = time.perf_counter()
                pipeline.process()
                ticks.append((time.perf_counter() - started) * 1000)
            rows.append((size, built, statistics.median(ticks), sorted(ticks)[int(len(ticks) * 0.95) - 1], max(ticks)))
            store.close()
    print(f"idle tick, {store.engine.dialect.name}, {args.brands} brands, {args.per_day:,} mentions a day, "
          f"{args.ticks} ticks, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'stored mentions':>16} {'build s':>8} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for size, built, median, p95, worst in rows:
        print(f"{size:>16,} {built:>8.1f} {median:>10.1f} {p95:>8.1f} {worst:>8.1f}")


def raw_counts(store: Store, brands: list[str], start: datetime, end: datetime) -> list[tuple]:
    """The counts as `report` took them before the rollup: one GROUP BY over every mention in the window."""
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(ReportRepository._counted(store, brands, start, end))]


def report(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if args.reuse and args.database_url:  # the history of an earlier run (building 10M takes minutes)
            store, url, built = Store(args.database_url), args.database_url, 0.0
        else:
            store, url = fresh_store(args.database_url, Path(tmp), "report")
            built = build(store, args.mentions, args.brands, args.days)
        settings = settings_for(Path(tmp), url, args.brands)
        with store.engine.connect() as conn:  # the history's own end (a reused one was built earlier)
            now = conn.execute(select(func.max(schema.mentions.c.created_at))).scalar() + timedelta(seconds=1)
        since = now - timedelta(days=args.days + 1)
        brands = list(settings.brands)
        timed = {}
        for name, run in (("report (rollup)", lambda: build_report(store, settings, since=since, now=now, by="week")),
                          ("counts (rollup)", lambda: store.daily_counts(brands, since, now)),
                          ("raw GROUP BY", lambda: raw_counts(store, brands, since, now))):
            runs = []
            for _ in range(args.runs):
                started = time.perf_counter()
                result = run()
                runs.append(time.perf_counter() - started)
            timed[name] = (min(runs), runs, result)
        volume = sum(r.total.volume for r in timed["report (rollup)"][2])
        raw = sum(row[3] for row in timed["raw GROUP BY"][2])
        with store.engine.connect() as conn:
            cells = conn.execute(select(text("count(*)")).select_from(schema.mention_daily)).scalar()
        store.close()
    print(f"report over {raw:,} mentions ({args.brands} brands, {args.days} days, {cells:,} rollup rows) on "
          f"{store.engine.dialect.name}; built in {built:.0f} s; load average {os.getloadavg()[0]:.1f}")
    for name, (best, runs, _) in timed.items():
        print(f"  {name:<16} best {best:7.2f} s   runs {', '.join(f'{s:.2f}' for s in runs)}")
    print(f"  mentions counted: report {volume:,}, raw {raw:,}; target for report < 5 s")


def main() -> None:
    logging.getLogger("mentionwatch").setLevel(logging.CRITICAL)  # the emulator knows none of the brands' channels
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("idle", "report"))
    parser.add_argument("--database-url", help="postgresql+psycopg://… of a throwaway database (default: SQLite)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 100_000, 1_000_000])
    parser.add_argument("--mentions", type=int, default=10_000_000)
    parser.add_argument("--brands", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=3000, help="idle: mentions a day; more stored means a longer "
                                                                  "history, not a busier one")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="report: time the history --database-url already "
                                                             "holds from an earlier run instead of rebuilding it")
    args = parser.parse_args()
    idle(args) if args.what == "idle" else report(args)


if __name__ == "__main__":
    main()
