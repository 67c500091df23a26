"""The process loop routes batch by batch: a backlog being labelled never holds back the first alerts."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Sequence

from monitor.core.labels import Labels
from classifiers.lexicon import LexiconClassifier
from monitor.config import load_settings
from monitor.core.records import Match, Post
from monitor.daemon import Daemon
from tests.support.config import config_dict, write_config
from tests.support.routing import NOW, mention_ids, routed_pipeline


class Watching:
    """The lexicon, noting how many Slack messages had arrived each time it was handed a batch."""

    version = "watching-lexicon"

    def __init__(self, slack):
        self.slack = slack
        self.inner = LexiconClassifier()
        self.seen: list[int] = []

    def classify(self, texts: Sequence[str]) -> list[Labels]:
        self.seen.append(len(self.slack.posted()))
        return self.inner.classify(texts)


def test_the_first_labelled_batch_reaches_slack_before_the_backlog_is_labelled(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s", "group_by": ["mention"]})
    pipeline.settings = pipeline.settings.model_copy(
        update={"classifier": pipeline.settings.classifier.model_copy(update={"batch_size": 4})})
    pipeline.classifier = watching = Watching(slack)
    posts = [(Post("reddit", f"c{i}", f"Acme Cloud is broken again and support ignores me, day {i}",
                   url=f"https://example.com/c{i}", author="kim", created_at=NOW), Match({"acme": []}))
             for i in range(12)]
    ids = store.commit_poll("acme/posts", posts, None, Counter(), NOW)
    pipeline.process()
    assert watching.seen[0] == 0 and len(watching.seen) == 3, "three batches of four"
    assert watching.seen[1] >= 1, "the first batch's alerts were in Slack before the second batch was labelled"
    assert watching.seen == sorted(watching.seen) and watching.seen[2] > watching.seen[1]
    assert sorted(i for m in slack.posted() for i in mention_ids(m)) == ids


def test_the_stages_run_in_order_and_say_which_are_off_and_why(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, spikes={"enabled": False}, digest={"enabled": False})
    assert [stage.name for stage in pipeline.stages] == ["trends", "backfill", "route", "reply clock", "flush"]
    assert pipeline.describe() == ("classify (lexicon-vader-1) -> trends (off: no brand has spikes or a weekly "
                                   "digest enabled) -> backfill -> route -> reply clock -> flush -> deliver")
    (tmp_path / "on").mkdir()
    on, _, _ = routed_pipeline(tmp_path / "on", slack)
    assert "off:" not in on.describe()
    store.close()
    on.store.close()


def test_the_daemon_logs_its_stages_once_when_it_starts(database, tmp_path, slack, caplog):
    caplog.set_level(logging.INFO, logger="mentionwatch")
    path = write_config(tmp_path, config_dict(tmp_path, slack.api_url, []))
    daemon = Daemon(str(path), load_settings(path)[0])
    daemon.run_once()
    lines = [r.getMessage() for r in caplog.records if r.name == "mentionwatch.monitor.daemon"]
    assert [line for line in lines if line.startswith("pipeline: ")] == [f"pipeline: {daemon.pipeline.describe()}"]
    daemon.store.close()


def test_the_daemon_flushes_a_group_when_its_group_wait_ends_not_at_its_next_periodic_run(tmp_path, feeds, slack):
    import threading

    from emulators.feeds import render_rss
    from emulators.server import wait_until
    from tests.support.config import feed_source

    feeds.set_feed("news", render_rss("News", "https://n.example/", [
        {"id": "1", "title": "Acme Cloud lost my files", "link": "https://n.example/1",
         "description": "Acme Cloud deleted my backups, awful support"}]))
    config = config_dict(tmp_path, slack.api_url, [feed_source("news", feeds.url_for("news"), interval="1h")],
                         daemon={"process_interval": "10m"}, routes={"group_wait": "2s", "group_by": ["mention"]})
    path = write_config(tmp_path, config)
    daemon = Daemon(str(path), load_settings(path)[0])
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    try:
        # The poll stores it and wakes a process run that routes it; the next periodic run is 10 min away.
        assert wait_until(lambda: slack.posted("#acme-alerts"), timeout=60), "sent when group_wait ended"
    finally:
        daemon.stop_event.set()
        runner.join(30)


class Gate:
    """The lexicon, holding its first batch until the test lets it go (a process run under way)."""

    version = "gate-lexicon"

    def __init__(self):
        import threading

        self.inner, self.entered, self.release = LexiconClassifier(), threading.Event(), threading.Event()

    def classify(self, texts: Sequence[str]) -> list[Labels]:
        self.entered.set()
        self.release.wait(30)
        return self.inner.classify(texts)


def test_mentions_stored_while_a_process_run_is_under_way_are_processed_right_after_it(tmp_path, feeds, slack):
    import threading

    from emulators.feeds import render_rss
    from emulators.server import wait_until
    from tests.support.config import feed_source

    def complaint(n: int) -> dict:
        return {"id": str(n), "title": f"Acme Cloud lost my files ({n})", "link": f"https://n.example/{n}",
                "description": "Acme Cloud deleted my backups, awful support"}

    feeds.set_feed("first", render_rss("First", "https://n.example/", [complaint(1)]))
    feeds.set_feed("later", render_rss("Later", "https://n.example/", []))
    config = config_dict(tmp_path, slack.api_url, [feed_source("first", feeds.url_for("first"), interval="1h"),
                                                   feed_source("later", feeds.url_for("later"), interval="1s")],
                         daemon={"process_interval": "10m"}, routes={"group_wait": "0s", "group_by": ["mention"]})
    path = write_config(tmp_path, config)
    daemon = Daemon(str(path), load_settings(path)[0])
    gate = daemon.pipeline.classifier = Gate()
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    try:
        assert gate.entered.wait(60), "a process run is labelling the first complaint"
        feeds.set_feed("later", render_rss("Later", "https://n.example/", [complaint(2)]))
        assert wait_until(lambda: len(daemon.store.unclassified(5)) == 2, timeout=30), "the second is stored"
        gate.release.set()
        # The second was stored during the run: it is labelled and sent right after, not in 10 minutes.
        assert wait_until(lambda: len(slack.posted("#acme-alerts")) == 2, timeout=60)
    finally:
        gate.release.set()
        daemon.stop_event.set()
        runner.join(30)
