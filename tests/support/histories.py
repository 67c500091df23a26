"""Generated mention histories with known answers, written through the store's own write paths."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime

from monitor.core.labels import Labels
from monitor.core.records import Gap, Match, Post
from monitor.store import Store

_ids = itertools.count(1)


def labels(sentiment: str, intent: str, model: str = "test-model") -> Labels:
    return Labels(sentiment, {sentiment: 1.0}, intent, {intent: 1.0}, intent in ("complaint", "question"), 0.9, model)


def add(store: Store, brand: str, source: str, when: datetime, sentiment: str | None = "neutral",
        intent: str = "other", text: str = "a post about acme", *, reach: int | None = None,
        title: str | None = None, url: str | None = None, author: str | None = "someone",
        labelled_at: datetime | None = None, model: str = "test-model") -> int:
    """One stored mention (and its label unless sentiment is None); returns its id."""
    number = next(_ids)
    post = Post(source=source, external_id=f"{source}-{number}", text=text, url=url or f"https://example.com/{number}",
                author=author, title=title, created_at=when, reach=reach)
    (mention_id,) = store.commit_poll(f"{brand}/{source}", [(post, Match({brand: []}))], None, Counter(), when)
    if sentiment is not None:
        store.save_labels([(mention_id, labels(sentiment, intent, model))], labelled_at or when)
    return mention_id


def add_gap(store: Store, brand: str, source: str, start: datetime, end: datetime, count: int, reason: str) -> None:
    store.commit_poll(f"{brand}/{source}", [], None, Counter(), end, [Gap(start, end, count, reason)])


def add_many(store: Store, brand: str, source: str, rows: list[tuple[datetime, str, str, str]]) -> list[int]:
    """Many mentions at once, (when, sentiment, intent, text) each, in one poll commit and one label commit."""
    found = []
    for when, _sentiment, _intent, text in rows:
        number = next(_ids)
        found.append((Post(source=source, external_id=f"{source}-{number}", text=text, created_at=when,
                           url=f"https://example.com/{number}", author=f"user{number}", reach=number % 97),
                      Match({brand: []})))
    ids = store.commit_poll(f"{brand}/{source}", found, None, Counter(), max(r[0] for r in rows))
    store.save_labels([(mid, labels(s, i)) for mid, (_, s, i, _) in zip(ids, rows)], max(r[0] for r in rows))
    return ids
