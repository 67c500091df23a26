"""A burst of labelled mentions through routing, grouping and the Slack sender.

Run: `python benchmarks/alerts.py [--mentions 1000]`.
The mentions are stored and labelled first (not timed), as the classifier would leave them. Then
the timed part runs the real stages against the Slack emulator with the real slack-sdk: route
(notifications), flush (after group_wait on an injected clock: group messages, overflow into
threads) and deliver (the outbox, exactly once). Grouping should turn 1,000 mentions into a few
dozen messages.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

from monitor.core.labels import Labels  # noqa: E402
from classifiers.lexicon import LexiconClassifier  # noqa: E402
from emulators.slack import SlackEmulator  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.core.records import Match, Post  # noqa: E402
from monitor.pipeline import Pipeline  # noqa: E402
from monitor.store import schema as t  # noqa: E402
from monitor.core.records import KUDOS_ROUTE  # noqa: E402
from monitor.store import Store  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
SOURCES = [("reddit", "acme/posts"), ("x", "acme/x"), ("hackernews", "acme/hn"), ("app_store", "acme/ios")]
# (share, sentiment, intent, needs_reply): about 80 % need a human; praise goes to the kudos channel.
MIX = [(0.35, "negative", "complaint", True), (0.30, "neutral", "question", True),
       (0.15, "negative", "other", False), (0.15, "positive", "praise", False), (0.05, "neutral", "other", False)]


def settings(db: Path, slack_url: str) -> Settings:
    return Settings.model_validate({
        "storage": {"url": f"sqlite:///{db}"},
        # no channel budget: every group's message is timed as its own post
        "slack": {"token": "xoxb-benchmark-not-a-real-token", "base_url": slack_url, "channel_messages_per_minute": 0},
        "routes": {"group_by": ["brand", "intent"], "group_wait": "30s",
                   "routes": [{"match": {"intent": ["complaint"]}, "channel": "#acme-complaints"}]},
        "brands": {"acme": {"names": ["Acme Cloud"], "slack_channel": "#acme-mentions", "kudos_channel": "#acme-kudos",
                            "spikes": {"enabled": False}}},
    })


def labels(sentiment: str, intent: str, needs_reply: bool) -> Labels:
    return Labels(sentiment, {sentiment: 0.8}, intent, {intent: 0.7}, needs_reply, 0.9, "benchmark", "en")


def store_burst(store: Store, count: int, rng: random.Random) -> None:
    shares = [m[0] for m in MIX]
    for start in range(0, count, 200):
        found, chosen = [], []
        for i in range(start, min(start + 200, count)):
            source, source_id = rng.choice(SOURCES)
            post = Post(source=source, external_id=f"b{i}", text=f"Acme Cloud post {i} " + "words " * rng.randrange(5, 40),
                        url=f"https://example.com/{i}", author=f"user{rng.randrange(10_000)}", created_at=NOW,
                        reach=rng.randrange(5000))
            found.append((post, Match({"acme": []})))
            chosen.append(rng.choices(MIX, shares)[0])
        ids = store.commit_poll("acme/burst", found, None, Counter(), NOW)
        store.save_labels([(mid, labels(*m[1:])) for mid, m in zip(ids, chosen)], NOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SlackEmulator() as slack:
        cfg = settings(Path(tmp) / "bench.db", slack.api_url)
        store = Store(cfg.storage.url)
        store_burst(store, args.mentions, random.Random(8))
        clock = [NOW]
        pipeline = Pipeline(cfg, store, LexiconClassifier(), clock=lambda: clock[0])

        started = time.perf_counter()
        while pipeline.route_pending():
            pass
        routed = time.perf_counter()
        clock[0] = NOW + timedelta(seconds=30)
        pipeline.flush_groups()
        flushed = time.perf_counter()
        while pipeline.deliver().sent:
            pass
        done = time.perf_counter()

        wall = done - started
        notes = store.notification_counts()
        messages = slack.posted()
        kudos = slack.posted("#acme-kudos")
        with store.engine.connect() as conn:
            praised = conn.execute(select(func.count()).select_from(t.notifications)
                                   .where(t.notifications.c.route == KUDOS_ROUTE)).scalar()
        threaded = sum(1 for m in messages if m.get("thread_ts"))
        print(f"mentions:             {args.mentions:,} in one burst ({sum(notes.values()) - praised:,} routed to "
              f"alert channels, {praised:,} praise for the kudos channel)")
        print(f"Slack messages:       {len(messages):,} ({len(messages) - len(kudos):,} alert and {len(kudos):,} "
              f"kudos messages; {len(messages) - threaded:,} top-level, {threaded:,} overflow in their threads)")
        print(f"Slack calls:          {len(slack.calls):,} = {len(slack.calls) / args.mentions:.3f} per mention")
        print(f"wall time:            {wall:.2f} s (route {routed - started:.2f} s, flush {flushed - routed:.2f} s, "
              f"send {done - flushed:.2f} s)")
        print(f"throughput:           {args.mentions / wall:,.0f} mentions/s through route + flush + send")
        store.close()


if __name__ == "__main__":
    main()
