"""A reply-clock world: one complaint and one praise in a feed, a pipeline on a hand-moved clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from emulators.feeds import render_rss
from tests.support.config import config_dict, feed_source, pipeline_with_clock

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
ALERTS, ESCALATIONS = "#acme-alerts", "#acme-escalations"


def make_world(tmp_path, feeds, slack, published: datetime = NOW, routes: dict | None = None, **brand):
    """One complaint and one praise in a feed; 4 h promise, repeat every hour, escalate to a group and a user."""
    items = [
        {"id": "1", "title": "Acme Cloud lost my data", "link": "https://blog.example.com/1", "published": published,
         "description": "Terrible, Acme Cloud deleted my backups and support is silent.", "author": "<@U999> kim"},
        {"id": "2", "title": "Acme Cloud is lovely", "link": "https://blog.example.com/2", "published": published,
         "description": "Nice dashboard, Acme.", "author": "lee"},
    ]
    feeds.set_feed("blog", render_rss("Blog", "https://blog.example.com/", items))
    config = config_dict(tmp_path, slack.api_url, [feed_source("blog", feeds.url_for("blog"))])
    config["routes"] |= {"repeat_interval": "1h", "escalation_channel": ESCALATIONS,
                         "escalate_to": ["S0ESCAL8", "U0BOSS12"], **(routes or {})}
    config["brands"]["acme"] |= {"reply_within": "4h", **brand}
    pipeline, store, clock = pipeline_with_clock(tmp_path, config, published)
    pipeline.poll("acme/blog")

    def at(moment: datetime):
        clock[0] = moment
        pipeline.process()

    at(published)
    return pipeline, store, slack, at


def alert_message(slack) -> dict:
    (message,) = [m for m in slack.posted(ALERTS) if not m.get("thread_ts")]
    return message


def complaint_id(store) -> int:
    (clock,) = store.open_clocks()
    return clock.mention_id
