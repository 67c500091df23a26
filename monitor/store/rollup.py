"""The daily rollup (`mention_daily`): each labelled mention counted once under its newest labels, kept
when mentions are pruned; and each mention's newest intent on the mention (`mentions.intent`). Written
in the transaction that labels the mentions, so a crash leaves both or neither, and guarded by
`classified_at` so two processes count a mention once."""

from __future__ import annotations

from collections import Counter
from datetime import timezone
from typing import Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from monitor.store import schema as t

m, lab, d = t.mentions.c, t.labels.c, t.mention_daily.c
Cell = tuple[str, str, str, str, str]  # brand, day, source, sentiment, intent


def mark_labelled(conn: Connection, ids: Sequence[int], now) -> tuple[set[int], dict[int, tuple[str, str]]]:
    """Set classified_at on these mentions (locking them); returns those labelled for the first time and
    the newest (sentiment, intent) of the others as they were, before this transaction's labels."""
    fresh = set(conn.execute(update(t.mentions).where(m.id.in_(list(ids)), m.classified_at.is_(None))
                             .values(classified_at=now).returning(m.id)).scalars())
    again = [i for i in ids if i not in fresh]
    if not again:
        return fresh, {}
    conn.execute(update(t.mentions).where(m.id.in_(again)).values(classified_at=now))
    return fresh, newest_labels(conn, again)


def newest_labels(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Each mention's newest (sentiment, intent): latest created_at, then the greatest model name."""
    best: dict[int, tuple] = {}
    for row in conn.execute(select(lab.mention_id, lab.created_at, lab.model, lab.sentiment, lab.intent)
                            .where(lab.mention_id.in_(list(ids)))):
        if row.mention_id not in best or (row.created_at, row.model) > best[row.mention_id][:2]:
            best[row.mention_id] = (row.created_at, row.model, row.sentiment, row.intent)
    return {mention_id: (s, i) for mention_id, (_, _, s, i) in best.items()}


def roll_up(conn: Connection, dialect, ids: Sequence[int], fresh: set[int], before: dict[int, tuple[str, str]]) -> None:
    """Count the fresh mentions under their newest labels; move a relabelled one whose newest labels changed;
    keep each mention's `intent` column its newest label's."""
    after = newest_labels(conn, ids)
    intents: dict[str, list[int]] = {}
    for mention_id, (_, intent) in after.items():
        old = None if mention_id in fresh else before.get(mention_id)
        if old is None or old[1] != intent:
            intents.setdefault(intent, []).append(mention_id)
    for intent, changed in sorted(intents.items()):
        conn.execute(update(t.mentions).where(m.id.in_(changed)).values(intent=intent))
    where = {r.id: (r.brand, f"{(r.created_at or r.fetched_at).astimezone(timezone.utc):%Y-%m-%d}", r.source)
             for r in conn.execute(select(m.id, m.brand, m.source, m.created_at, m.fetched_at)
                                   .where(m.id.in_(list(ids))))}
    delta: Counter[Cell] = Counter()
    for mention_id, labels in after.items():
        old = None if mention_id in fresh else before.get(mention_id)
        if old == labels:
            continue
        if old is not None:
            delta[(*where[mention_id], *old)] -= 1
        delta[(*where[mention_id], *labels)] += 1
    rows = [{"brand": c[0], "day": c[1], "source": c[2], "sentiment": c[3], "intent": c[4], "count": n}
            for c, n in sorted(delta.items()) if n]
    if rows:
        stmt = dialect.insert(t.mention_daily)
        conn.execute(stmt.on_conflict_do_update(index_elements=["brand", "day", "source", "sentiment", "intent"],
                                                set_={"count": d.count + stmt.excluded["count"]}), rows)
