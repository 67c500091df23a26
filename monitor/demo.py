"""`mentionwatch demo`: the real daemon on bundled sample posts, against local feed and Slack emulators."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from importlib import resources
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from emulators.app_store import AppStoreEmulator, serve_demo as serve_app_store_demo
from emulators.bsky_appview import AppViewEmulator
from emulators.feeds import FeedsEmulator, render_atom, render_rss
from emulators.hackernews import HackerNewsEmulator, serve_demo as serve_hackernews_demo
from emulators.jetstream import JetstreamEmulator, serve_demo as serve_bluesky_demo
from emulators.mastodon import MastodonEmulator, serve_demo as serve_mastodon_demo
from emulators.reddit import RedditEmulator, serve_demo as serve_reddit_demo
from emulators.slack import SlackEmulator, channel_id_for
from emulators.server import wait_until
from emulators.x import XEmulator, serve_demo as serve_x_demo

DEMO_TOKEN = "xoxb-demo-not-a-real-token"
CHANNEL = "#acme-mentions"
KUDOS_CHANNEL = "#acme-kudos"
DEMO_TIMEOUT = 60.0  # seconds from start to everything in Slack, model load included


def demo_posts(name: str = "posts.yaml") -> dict:
    return yaml.safe_load(resources.files("monitor").joinpath(f"demo_data/{name}").read_text(encoding="utf-8"))


def serve_demo_feeds(feeds: FeedsEmulator, data: dict, now: datetime) -> dict[str, str]:
    """Publish each sample feed on the emulator; returns feed name -> URL."""
    urls = {}
    for name, feed in data["feeds"].items():
        items = [{"id": f"urn:demo:{name}:{i}", "title": p["title"], "description": p["text"],
                  "author": p["author"], "published": now - timedelta(minutes=p["age"]),
                  "link": f"https://{name}.example.com/posts/{i}"} for i, p in enumerate(feed["posts"])]
        if feed["format"] == "rss":
            feeds.set_feed(name, render_rss(feed["title"], f"https://{name}.example.com/", items))
        else:
            feeds.set_feed(name, render_atom(feed["title"], items, google_alerts=True), "application/atom+xml")
        urls[name] = feeds.url_for(name)
    return urls


def demo_config(data: dict, urls: dict[str, str], slack_url: str, db_path: Path, classifier: str) -> dict:
    return {
        "storage": {"url": f"sqlite:///{db_path}"},
        "slack": {"token": "${DEMO_SLACK_TOKEN:-" + DEMO_TOKEN + "}", "base_url": slack_url},
        "classifier": {"kind": classifier},
        # The sample posts are minutes to 2 h old: shown as news (one alert each, grouped), not as the
        # single backfill summary a real first run gives history.
        "daemon": {"process_interval": "1s", "backfill_older_than": "3h"},
        # Short waits so the demo shows grouping in seconds: a burst becomes one message per intent.
        "routes": {"group_by": ["brand", "intent"], "group_wait": "2s", "group_interval": "1m"},
        "brands": {"acme": {**data["brand"], "slack_channel": CHANNEL, "reply_within": "2h",
                            "kudos_channel": KUDOS_CHANNEL,
                            "sources": [{"type": "feed", "name": name, "url": url, "interval": "30s",
                                         "require_match": name != "google-alerts"} for name, url in urls.items()]}},
    }


def run_demo(keep: bool = False, classifier: str = "transformer", timeout: float = DEMO_TIMEOUT) -> int:
    """Runs the daemon until everything the sample posts cause has reached Slack, or `timeout` seconds
    from the start (model load included) have passed; prints what Slack received either way, then removes
    the temporary folder. Returns 0, or 1 when it timed out."""
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="mentionwatch-demo-"))
    try:
        return _run(console, workdir, classifier, timeout)
    finally:
        if keep:
            console.print(f"files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(console: Console, workdir: Path, classifier: str, timeout: float) -> int:
    from alerts.receivers import receiver_types
    from classifiers.base import describe
    from monitor.config import load_settings
    from monitor.daemon import Daemon
    from monitor.core.logs import setup_logging

    setup_logging("WARNING")
    data = demo_posts()
    total_posts = sum(len(f["posts"]) for f in data["feeds"].values())
    started = time.monotonic()
    with (FeedsEmulator() as feeds, SlackEmulator() as slack, AppStoreEmulator() as app_store,
          HackerNewsEmulator() as hackernews, XEmulator() as x_api, RedditEmulator() as reddit_api,
          JetstreamEmulator() as jetstream, AppViewEmulator() as appview, MastodonEmulator() as mastodon):
        now = datetime.now(timezone.utc)
        urls = serve_demo_feeds(feeds, data, now)
        streams = []  # live sources: done once their cursor covers what was streamed
        config = demo_config(data, urls, slack.api_url, workdir / "demo.db", classifier)
        for name, emulator, serve in (("app_store", app_store, serve_app_store_demo),
                                      ("hackernews", hackernews, serve_hackernews_demo),
                                      ("x", x_api, serve_x_demo), ("reddit", reddit_api, serve_reddit_demo),
                                      ("bluesky", jetstream, partial(serve_bluesky_demo, appview=appview)),
                                      ("mastodon", mastodon, serve_mastodon_demo)):
            served = serve(emulator, demo_posts(f"{name}.yaml"), now)
            if "settled" in served:
                streams.append(served["settled"])
            config[name] = served["platform"]
            config["brands"]["acme"]["sources"] += served["sources"]
            config["brands"]["acme"].setdefault("team", {}).update(served.get("team", {}))
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        settings, _ = load_settings(config_path, receiver_types=receiver_types())
        console.print(f"[bold]mentionwatch demo[/bold]: {total_posts} sample posts in {len(urls)} feeds, "
                      f"Slack emulator at {slack.url}; loading the {settings.classifier.kind} classifier "
                      "(the first run on a machine builds and measures it, then it is cached)")
        daemon = Daemon(str(config_path), settings)
        console.print(f"classifier {escape(describe(daemon.pipeline.classifier))}, "
                      f"loaded in {time.monotonic() - started:.1f} s")
        runner = threading.Thread(target=daemon.run, daemon=True)
        runner.start()

        def settled() -> bool:
            counts = daemon.store.alert_counts()
            polled = all(daemon.store.get_health(sid).last_success_at for sid in daemon.pipeline.sources)
            return polled and all(done(daemon.store) for done in streams) and not daemon.store.unclassified(1) and not counts.get("pending") \
                and not counts.get("sending") and not daemon.store.unrouted(1) \
                and not daemon.store.notification_counts().get("waiting")

        ok = wait_until(settled, timeout=max(0.0, timeout - (time.monotonic() - started)))
        # Shown before the daemon stops: stopping may abandon a job stuck past its grace.
        _show(console, daemon, slack, settings)
        daemon.stop_event.set()
        runner.join(10)
    elapsed = time.monotonic() - started
    if not ok:
        console.print(f"[red]demo timed out[/red] after {elapsed:.0f} s (limit {timeout:.0f} s, model load "
                      "included) before every sample post reached Slack; above is what arrived. On a slow or "
                      "busy machine try `mentionwatch demo --classifier lexicon`, or a longer --timeout.")
        return 1
    console.print(f"finished in {elapsed:.1f} s")
    return 0


def _show(console: Console, daemon, slack: SlackEmulator, settings) -> None:
    rows = list(daemon.store.export_rows(None))
    drops = daemon.store.drop_counts()
    dropped = {}
    for per_source in drops.values():
        for reason, count in per_source.items():
            dropped[reason] = dropped.get(reason, 0) + count
    table = Table("sentiment", "intent", "alert", "source", "title", title=f"{len(rows)} mentions stored")
    for row in rows:
        table.add_row(row["sentiment"] or "", row["intent"] or "", row["alert_state"] or "-",
                      row["source_id"].split("/")[-1], (row["title"] or "")[:60])
    console.print(table)
    console.print(f"dropped before storing: {dropped or 'none'}")
    names = {channel_id_for(c): c for c in (CHANNEL, KUDOS_CHANNEL, settings.slack.ops_channel or CHANNEL)}
    for message in slack.posted():
        header = message["blocks"][0]["text"]["text"] if message["blocks"][0]["type"] == "header" else ""
        lines = []
        for block in message["blocks"][1:]:
            if block["type"] == "section":
                lines.append(block["text"]["text"])
            elif block["type"] == "context":
                lines.append("[dim]" + " | ".join(e["text"] for e in block["elements"]) + "[/dim]")
        where = names.get(message["channel"], message["channel"]) + (" (thread)" if message.get("thread_ts") else "")
        console.print(Panel("\n".join(lines) or message["text"], title=f"Slack {where}: {header}", expand=False))
    console.print(f"[bold]{len(slack.posted())} Slack messages[/bold] received by the emulator "
                  f"(plain text escaped: no pings, no forged links)")
