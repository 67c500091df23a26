"""Helpers for the routing, grouping and silence tests: labelled mentions stored directly, a pipeline
with an injected clock and its own route tree, and what the Slack emulator received."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from monitor.core.labels import Labels
from monitor.core.records import Match, Post
from tests.support.config import config_dict, pipeline_with_clock

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # a Friday
INTENTS = ("complaint", "question", "praise", "suggestion", "other")


def labels(sentiment: str = "negative", intent: str = "complaint", needs_reply: bool = True,
           language: str | None = "en") -> Labels:
    sentiments = {s: (0.8 if s == sentiment else 0.1) for s in ("negative", "neutral", "positive")}
    intents = {i: (0.6 if i == intent else 0.1) for i in INTENTS}
    return Labels(sentiment, sentiments, intent, intents, needs_reply, 0.9, "test-model", language)


def routed_pipeline(tmp_path, slack, routes: dict | None = None, now: datetime = NOW, brands: dict | None = None,
                    **acme):
    """A pipeline whose config has this route tree (replacing the tests' one-message-per-mention default)."""
    config = config_dict(tmp_path, slack.api_url, [])
    config["routes"] = routes or {}
    config["brands"]["acme"].update(acme)
    config["brands"].update(brands or {})
    return pipeline_with_clock(tmp_path, config, now)


def add(store, external_id: str, lab: Labels, now: datetime = NOW, *, source: str = "reddit",
        source_id: str = "acme/posts", brands=("acme",), text: str | None = None, author: str = "kim",
        thread_id: str | None = None, parent_id: str | None = None, reach: int | None = None,
        extra: dict | None = None) -> int:
    """Store one mention with these labels, as a connector and the classifier would."""
    post = Post(source=source, external_id=external_id, text=text or f"Acme Cloud problem number {external_id}",
                url=f"https://example.com/{external_id}", author=author, title=None, created_at=now,
                thread_id=thread_id, parent_id=parent_id, reach=reach, extra=extra or {})
    (mention_id,) = store.commit_poll(source_id, [(post, Match({b: [] for b in brands}))], None, Counter(), now)
    store.save_labels([(mention_id, lab)], now)
    return mention_id


def mention_ids(message: dict) -> list[int]:
    """The mentions a Slack message lists, by their `mention:<id>` section blocks."""
    return [int(b["block_id"].split(":")[1]) for b in message["blocks"] or []
            if str(b.get("block_id", "")).startswith("mention:")]


def header(message: dict) -> str:
    return message["blocks"][0]["text"]["text"]
