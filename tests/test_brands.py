"""Many brands with the README's source blocks copied under each: every block is its own brand's source
(its terms, cursor and health), through the real clients against the X, Hacker News and Reddit emulators."""

from __future__ import annotations

import secrets
import time

from emulators.hackernews import HackerNewsEmulator, story
from emulators.reddit import RedditEmulator
from emulators.x import XEmulator
from monitor.store import schema as t
from monitor.config import Settings, load_settings
from monitor.daemon import build_pipeline
from monitor.store import Store
from tests.support.config import config_dict, write_config

NAMES = ["Acme Cloud", "Birchmail", "Cobaltpay", "Dunefleet", "Emberdocs", "Fjordbank", "Glimmerly", "Harborsync"]
BEARER = "x-bearer-brands-7c1d"
# The example config's blocks, verbatim under every brand: same type, same name, same settings.
SOURCES = [{"type": "x", "name": "x", "interval": "5m"},
           {"type": "hackernews", "name": "hacker-news", "interval": "5m"},
           {"type": "reddit", "name": "reddit-search", "what": "search", "interval": "5m"}]


def brand_id(name: str) -> str:
    return name.split()[0].lower()


def test_identical_source_blocks_under_different_brands_are_different_sources():
    settings = Settings(slack={"token": "xoxb-x"}, brands={
        brand_id(n): {"names": [n], "slack_channel": "#a", "sources": [dict(s) for s in SOURCES[1:2]]} for n in NAMES})
    owners = {sid: settings.brand_of(source)[0] for sid, (_, source) in settings.sources().items()}
    assert owners == {f"{brand_id(n)}/hacker-news": brand_id(n) for n in NAMES}
    first, second = (settings.brands[brand_id(n)].sources[0] for n in NAMES[:2])
    assert first != second, "equal settings, different brands: not the same source"


def test_eight_brands_with_the_example_source_names_store_every_mention(database, tmp_path, slack):
    with XEmulator(bearer_token=BEARER) as xapi, HackerNewsEmulator() as hn, \
            RedditEmulator(client_id=f"cid-{secrets.token_hex(6)}", client_secret="s3cret") as reddit:
        config = config_dict(tmp_path, slack.api_url, [])
        config["brands"] = {brand_id(n): {"names": [n], "slack_channel": f"#{brand_id(n)}-alerts",
                                          "sources": [dict(s) for s in SOURCES]} for n in NAMES}
        config["x"] = {"bearer_token": BEARER, "base_url": xapi.url, "connect_timeout": "1s", "read_timeout": "1s",
                       "max_results": 10}
        config["hackernews"] = {"base_url": hn.api_url, "connect_timeout": "1s", "read_timeout": "1s"}
        config["reddit"] = {"client_id": reddit.client_id, "client_secret": reddit.client_secret,
                            "oauth_url": reddit.url, "reddit_url": reddit.url, "timeout": "2s", "max_wait": "1s"}
        settings, _ = load_settings(write_config(tmp_path, config))
        expected: dict[str, set[tuple[str, str]]] = {}
        now = int(time.time())
        for i, name in enumerate(NAMES):
            bid = brand_id(name)
            tweets = [xapi.post(f"user{i}", f"{name} lost my invoice again, number {k}") for k in range(2)]
            hn.add(story(9000 + i, f"{name} raises prices for everyone", now - 60 + i))
            post = reddit.add_post("webhosting", f"Anyone else moving off {name}?", "asking for a friend")
            expected[bid] = {("x", tid) for tid in tweets} | {("hackernews", str(9000 + i)), ("reddit", post["name"])}

        pipeline = build_pipeline(settings, Store(settings.storage.url))
        outcomes = [pipeline.poll(sid) for sid in pipeline.sources]
        assert [o.source_id for o in outcomes if o.failure] == []
        with pipeline.store.engine.connect() as conn:
            rows = conn.execute(t.mentions.select()).mappings().all()
            cursors = {row.source_id for row in conn.execute(t.cursors.select())}
        assert len(pipeline.sources) == 24 and cursors == set(pipeline.sources), "a cursor per brand and block"
        assert {h.source_id for h in pipeline.store.all_health() if h.last_success_at} == set(pipeline.sources)
        stored: dict[str, set[tuple[str, str]]] = {}
        for row in rows:
            stored.setdefault(row["brand"], set()).add((row["source"], row["external_id"]))
            assert row["source_id"] == f"{row['brand']}/" + {"x": "x", "hackernews": "hacker-news",
                                                              "reddit": "reddit-search"}[row["source"]]
        assert stored == expected, "every brand's mentions, each found by that brand's own sources"
        searched = {q["query"] for q in xapi.queries("search")}
        assert all(any(n.split()[0] in q for q in searched) for n in NAMES), "each X block searched its brand"
