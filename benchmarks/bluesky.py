"""The Bluesky filter: Jetstream events through the real reader (websocket, shared buffer, the
connector's drain) and the matcher with 1,000 brands' terms and queries, with the Jetstream emulator
in another process so the figures are the daemon's side only.

Run: `python benchmarks/bluesky.py [--events 40000] [--rate 2000] [--seconds 10]`.
1. Capacity: the emulator holds `--events` posts and the reader replays them from a cursor as fast
   as it can; prints events/s and the process's CPU (in cores), side by side with the floor of the
   work (json.loads of the same messages, and the matcher alone on the same texts).
2. Paced: the emulator emits `--rate` events/s for `--seconds`, each stamped with its send time;
   one source polls every 0.5 s. Prints the events/s kept up with, CPU share and the lag from send to
   matched (p50, p99, max; the poll interval is part of it).
Target: 2,000 events/s with 1,000 brands on 2 cores (the network's observed peak is about 36 posts/s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.matcher import make_brands, make_posts, with_queries  # noqa: E402
from connectors import bluesky  # noqa: E402
from emulators.jetstream import JetstreamEmulator, post_event  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.matcher import Matcher  # noqa: E402
from monitor.query import facts_of  # noqa: E402

BRANDS = 1_000
TERMS = 10
TARGET = 2_000
START_US = int(time.time() * 1_000_000) - 600 * 1_000_000


def texts(count: int, seed: int = 7) -> tuple[dict, list[str]]:
    rng = random.Random(seed)
    brands = with_queries(make_brands(BRANDS * TERMS, rng))
    terms = [t for kinds in brands.values() for k, v in kinds.items() if k not in ("exclude", "query") for t in v]
    return brands, make_posts(count, terms, rng)


def messages(posts: list[str], first_us: int) -> list[str]:
    return [json.dumps(post_event(first_us + i, f"did:plc:{i % 5000:05d}", f"r{i}", text))
            for i, text in enumerate(posts)]


def _server(conn, count: int, rate: int, seconds: float) -> None:
    """The emulator's process: preloaded (rate 0) or emitting `rate` events/s stamped with the send time."""
    _, posts = texts(max(count, 5_000))
    with JetstreamEmulator() as jet:
        if rate == 0:
            for message, i in zip(messages(posts, START_US), range(count)):
                jet.send_raw(message, START_US + i)
        conn.send(jet.url)
        conn.recv()  # the client connected
        if rate:
            begin, sent, last = time.perf_counter(), 0, 0
            while sent < rate * seconds:
                due = int((time.perf_counter() - begin) * rate)
                for _ in range(min(due - sent, 200)):
                    now_us = max(time.time_ns() // 1000, last + 1)
                    jet.send(post_event(now_us, "did:plc:bench", f"p{sent}", posts[sent % len(posts)]))
                    last, sent = now_us, sent + 1
                time.sleep(0.001)
            conn.send(sent)
        conn.recv()  # done


def connector_for(url: str) -> bluesky.BlueskyConnector:
    settings = Settings(slack={"token": "xoxb-x"},
                        bluesky={"jetstream_url": url},  # the defaults: a 20,000-event buffer
                        brands={"acme": {"names": ["Acme"], "slack_channel": "#a",
                                         "sources": [{"type": "bluesky", "name": "sky"}]}})
    return bluesky.BlueskyConnector(settings.brands["acme"].sources[0], settings)


def consume(connector, matcher: Matcher, cursor: int, until_us: int | None, lags: list[float] | None,
            pause: float, deadline: float) -> tuple[int, int, int]:
    """Poll like the daemon until `until_us` is covered (or the deadline): events drained, matched, cursor."""
    drained = matched = 0
    while time.monotonic() < deadline:
        result = connector.fetch({"time_us": cursor})
        cursor = result.cursor["time_us"]
        now_us = time.time_ns() // 1000
        for post in result.posts:
            if matcher.match(post.searchable, facts_of(post, "acme/sky"))[0] is not None:
                matched += 1
            if lags is not None:
                lags.append((now_us - post.extra["time_us"]) / 1000)
        drained += len(result.posts) + len(result.skipped)
        if until_us is not None and cursor >= until_us:
            break
        time.sleep(pause)
    return drained, matched, cursor


def run(count: int, rate: int, seconds: float, matcher: Matcher) -> dict:
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_server, args=(child, count, rate, seconds))
    server.start()
    url = parent.recv()
    connector = connector_for(url)
    start_cursor = START_US - 1 if rate == 0 else time.time_ns() // 1000
    lags: list[float] = []
    connector.fetch({"time_us": start_cursor})  # starts the reader at the cursor
    parent.send("go")
    wall, cpu = time.perf_counter(), time.process_time()
    if rate == 0:
        drained, matched, _ = consume(connector, matcher, start_cursor, START_US + count - 1, None, 0.0,
                                      time.monotonic() + 600)
    else:
        drained, matched, cursor = consume(connector, matcher, start_cursor, None, lags, 0.5,
                                           time.monotonic() + seconds)
        sent = parent.recv()
        more, more_matched, _ = consume(connector, matcher, cursor, None, lags, 0.5, time.monotonic() + 1.5)
        drained, matched = drained + more, matched + more_matched
        count = sent
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bluesky.close_all()  # the reader stops before the emulator does: a shutdown, not a lost stream
    parent.send("done")
    server.join(10)
    lags.sort()
    pick = (lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]) if lags else (lambda q: float("nan"))
    return {"events": count, "drained": drained, "matched": matched, "wall": wall, "cpu": cpu,
            "p50": pick(0.5), "p99": pick(0.99), "max": lags[-1] if lags else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rate", type=int, default=TARGET)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    brands, posts = texts(args.events)
    matcher = Matcher(brands)
    print(f"Bluesky filter: {BRANDS:,} brands x {TERMS} terms and a query each ({matcher.term_count:,} keys); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; Python {sys.version.split()[0]}; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    raw = messages(posts, START_US)
    start = time.perf_counter()
    for message in raw:
        json.loads(message)
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    for text in posts:
        matcher.match(text)
    match_s = time.perf_counter() - start
    bulk = run(args.events, 0, 0, matcher)
    print(f"\n1. capacity, {args.events:,} events replayed from a cursor as fast as the reader takes them")
    print(f"  {'path':<52} {'events/s':>10} {'CPU (cores)':>12}")
    print(f"  {'json.loads only (floor)':<52} {args.events / parse_s:>10,.0f} {'1.00':>12}")
    print(f"  {'matcher only, same texts (floor)':<52} {args.events / match_s:>10,.0f} {'1.00':>12}")
    print(f"  {'websocket -> reader -> drain -> Post -> matcher':<52} {bulk['drained'] / bulk['wall']:>10,.0f} "
          f"{bulk['cpu'] / bulk['wall']:>12.2f}   ({bulk['matched']:,} matched)")
    verdict = "meets" if bulk["drained"] / bulk["wall"] >= TARGET else "MISSES"
    print(f"  -> {verdict} the target of {TARGET:,} events/s")
    paced = run(0, args.rate, args.seconds, matcher)
    print(f"\n2. paced, {args.rate:,} events/s for {args.seconds:g} s, one source polling every 0.5 s")
    print(f"  sent {paced['events']:,}, drained {paced['drained']:,} ({paced['matched']:,} matched); CPU "
          f"{paced['cpu'] / paced['wall']:.2f} cores ({paced['cpu'] / paced['wall'] / 2:.0%} of 2)")
    print(f"  lag send -> matched: p50 {paced['p50']:,.0f} ms, p99 {paced['p99']:,.0f} ms, max {paced['max']:,.0f} ms")


if __name__ == "__main__":
    main()
