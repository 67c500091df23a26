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
3. To Slack (`--to-slack N`): the real daemon (`mentionwatch run`'s Daemon, default intervals: the
   Bluesky source drains its buffer every 15 s, classify/route/send every 5 s, `group_wait` 30 s)
   against the Jetstream, AppView and Slack emulators, with 36 unrelated events/s behind N matching
   posts sent at random moments; prints each post's time from Jetstream to Slack, against the
   issue's bound of `group_wait + 15 s`.
Target: 2,000 events/s with 1,000 brands on 2 cores (the network's observed peak is about 36 posts/s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.routes import DEFAULT_GROUP_WAIT  # noqa: E402
from benchmarks.matcher import make_brands, make_posts, with_queries  # noqa: E402
from connectors import bluesky  # noqa: E402
from emulators.bsky_appview import AppViewEmulator  # noqa: E402
from emulators.jetstream import JetstreamEmulator, post_event  # noqa: E402
from emulators.server import wait_until  # noqa: E402
from emulators.slack import SlackEmulator  # noqa: E402
from monitor.config import Settings, load_settings  # noqa: E402
from monitor.core.logs import setup_logging  # noqa: E402
from monitor.daemon import Daemon  # noqa: E402
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


NOISE_RATE = 36  # events/s: the network's observed peak, none of them about the brand
COMPLAINTS = ["Acme Cloud has been down for an hour and support is not answering, this is awful",
              "Acme Cloud billed me twice this month and nobody replies to my ticket",
              "Why does Acme Cloud keep losing my uploads? Terrible week",
              "Acme Cloud dashboard broken again, can't deploy anything, really angry"]


def to_slack(count: int, classifier: str, seed: int = 11) -> tuple[list[float], float]:
    """Seconds from each matching post's Jetstream send to its Slack message; the route's group_wait."""
    rng = random.Random(seed)
    _, noise = texts(5_000)
    noise = [t for t in noise if "acme" not in t.casefold()]
    workdir = Path(tempfile.mkdtemp(prefix="mentionwatch-bluesky-"))
    setup_logging("WARNING")
    with JetstreamEmulator() as jet, AppViewEmulator() as appview, SlackEmulator() as slack:
        config = {"storage": {"url": f"sqlite:///{workdir / 'mw.db'}"},
                  "slack": {"token": "xoxb-benchmark-token", "base_url": slack.api_url},
                  "classifier": {"kind": classifier},
                  "bluesky": {"jetstream_url": jet.url, "api": {"base_url": appview.url}},
                  "routes": {"group_by": ["mention"]},   # each post its own group: each waits the full group_wait
                  "brands": {"acme": {"names": ["Acme Cloud"], "slack_channel": "#acme-alerts",
                                      "sources": [{"type": "bluesky", "name": "sky"}]}}}
        path = workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        settings, _ = load_settings(path)
        daemon = Daemon(str(path), settings)
        group_wait = (settings.routes.group_wait or DEFAULT_GROUP_WAIT).total_seconds()
        runner = threading.Thread(target=daemon.run, daemon=True)
        runner.start()
        wait_until(lambda: bool(jet.connects), timeout=120)
        stop, sent, last = threading.Event(), {}, [0]

        def emit(text: str, rkey: str, did: str) -> None:
            now_us = max(time.time_ns() // 1000, last[0] + 1)
            last[0] = now_us
            jet.send(post_event(now_us, did, rkey, text))

        def background() -> None:
            n = 0
            while not stop.wait(1 / NOISE_RATE):
                emit(noise[n % len(noise)], f"n{n}", f"did:plc:noise{n % 997}")
                n += 1

        threading.Thread(target=background, daemon=True).start()
        for i in range(count):
            time.sleep(rng.uniform(2.0, 9.0))  # random phase against the 15 s poll and 5 s process ticks
            appview.profile(f"did:plc:user{i}", f"user{i}.bsky.social", followers=rng.randint(5, 5000))
            sent[f"[{i:03d}]"] = time.time()
            emit(f"{COMPLAINTS[i % len(COMPLAINTS)]} [{i:03d}]", f"m{i}", f"did:plc:user{i}")

        def arrived() -> dict[str, float]:
            out = {}
            for message in slack.posted("#acme-alerts"):
                body = json.dumps(message.get("blocks") or message.get("text"))
                for tag in sent:
                    if tag in body:
                        out.setdefault(tag, float(message["ts"]))
            return out

        wait_until(lambda: len(arrived()) == count, timeout=group_wait + 120, interval=0.25)
        stop.set()
        got = arrived()
        daemon.stop_event.set()
        runner.join(15)
    for child in workdir.iterdir():
        child.unlink()
    workdir.rmdir()
    return sorted(got[tag] - at for tag, at in sent.items() if tag in got), group_wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rate", type=int, default=TARGET)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--to-slack", type=int, default=0, metavar="N",
                        help="also time N matching posts from Jetstream to Slack through the daemon")
    parser.add_argument("--classifier", choices=["transformer", "lexicon"], default="transformer")
    args = parser.parse_args()
    import torch

    brands, posts = texts(args.events)
    matcher = Matcher(brands)
    print(f"Bluesky filter: {BRANDS:,} brands x {TERMS} terms and a query each ({matcher.term_count:,} keys); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; Python {sys.version.split()[0]}; "
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
    if args.to_slack:
        seconds, group_wait = to_slack(args.to_slack, args.classifier)
        print(f"\n3. to Slack, {args.to_slack} matching posts among {NOISE_RATE} events/s, the daemon at its default "
              f"intervals, {args.classifier} classifier; load average now {os.getloadavg()[0]:.1f}")
        print(f"  arrived {len(seconds)}/{args.to_slack}; Jetstream -> Slack: min {min(seconds, default=0):.1f} s, "
              f"median {seconds[len(seconds) // 2] if seconds else 0:.1f} s, max {max(seconds, default=0):.1f} s")
        bound = group_wait + 15
        verdict = "within" if len(seconds) == args.to_slack and max(seconds) <= bound else "NOT within"
        print(f"  -> {verdict} group_wait + 15 s = {bound:.0f} s")


if __name__ == "__main__":
    main()
