"""What nodes on one database share, at the store: leases with fencing tokens, and labelling side by side.

The daemons themselves, killed at random, are in tests/test_nodes.py."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from monitor.core.labels import Labels
from monitor.core.records import Match, Post
from monitor.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
TTL = timedelta(seconds=30)


def neutral(chunk: list[tuple[int, str]]) -> list[Labels]:
    return [Labels("neutral", {"neutral": 1.0}, "other", {"other": 1.0}, False, 0.0, "test") for _ in chunk]


def test_a_lease_is_one_nodes_until_it_expires_and_each_new_holder_gets_a_higher_token(database):
    store = Store(database)
    first = store.take_lease("poll:acme/blog", "node-a", NOW, TTL)
    assert first is not None
    assert store.take_lease("poll:acme/blog", "node-b", NOW + TTL / 2, TTL) is None, "held by node-a"
    assert store.take_lease("poll:acme/blog", "node-a", NOW + TTL / 2, TTL) == first, "a renewal keeps the token"
    assert store.take_lease("poll:acme/blog", "node-b", NOW + TTL, TTL) is None, "renewed: not expired yet"
    taken = store.take_lease("poll:acme/blog", "node-b", NOW + 2 * TTL, TTL)
    assert taken is not None and taken > first, "node-a stopped renewing; node-b takes over with a new token"
    assert store.take_lease("process", "node-a", NOW + 2 * TTL, TTL) is not None, "leases are independent"
    store.drop_leases("node-b")
    assert store.take_lease("poll:acme/blog", "node-c", NOW + 2 * TTL, TTL) is not None, "a clean stop hands over"
    store.close()


def test_nodes_labelling_side_by_side_take_disjoint_batches_and_label_everything_once(postgres_databases):
    url = postgres_databases.create()
    node_a, node_b = Store(url), Store(url)
    posts = [(Post("feed", str(i), f"Acme post {i}"), Match({"acme": ["Acme"]})) for i in range(10)]
    ids = node_a.commit_poll("acme/a", posts, None, Counter(), NOW)
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def label_as_b(chunk):
        seen["b"].extend(i for i, _ in chunk)
        return neutral(chunk)

    def label_as_a(chunk):
        seen["a"].extend(i for i, _ in chunk)
        # While node a still holds its batch (the model runs), node b labels: it skips a's rows.
        assert node_b.label_pending(4, label_as_b, lambda: NOW) == 4
        return neutral(chunk)

    assert node_a.label_pending(4, label_as_a, lambda: NOW) == 4
    assert set(seen["a"]).isdisjoint(seen["b"]) and len(seen["a"] + seen["b"]) == 8
    assert node_b.label_pending(10, label_as_b, lambda: NOW) == 2
    assert sorted(seen["a"] + seen["b"]) == sorted(ids)
    assert node_a.unclassified(10) == [] and node_a.label_pending(10, label_as_a, lambda: NOW) == 0
    node_a.close()
    node_b.close()


def test_a_node_that_dies_mid_batch_leaves_its_mentions_to_the_others(postgres_databases):
    url = postgres_databases.create()
    dying, survivor = Store(url), Store(url)
    posts = [(Post("feed", str(i), f"Acme post {i}"), Match({"acme": ["Acme"]})) for i in range(3)]
    ids = dying.commit_poll("acme/a", posts, None, Counter(), NOW)

    def crash(chunk):
        raise SystemExit("killed while the model ran")

    with pytest.raises(SystemExit):
        dying.label_pending(3, crash, lambda: NOW)
    dying.engine.dispose()  # its connection gone, as after kill -9
    assert survivor.label_pending(10, neutral, lambda: NOW) == len(ids)
    survivor.close()
