"""The weekly digest: when it is due, what it says, and once per week across restarts and downtime."""

from __future__ import annotations

import base64
import io
import logging
from datetime import datetime, time, timedelta, timezone

import pytest
from matplotlib.image import imread

from alerts.digest import digest_due, week_bounds
from alerts.messages import slack_escape
from monitor.config import DigestConfig, load_settings
from monitor.core.records import NewAlert
from monitor.store import Store
from monitor.trends import Trends
from tests.support.config import config_dict, pipeline_with_clock, write_config
from tests.support.histories import add

UTC = timezone.utc
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday of 2026-W48: the digest of W47 is due
BERLIN = DigestConfig(timezone="Europe/Berlin")


@pytest.mark.parametrize("schedule, now, last_sent, due", [
    (BERLIN, datetime(2026, 11, 23, 7, 59, tzinfo=UTC), None, None),  # 08:59 in Berlin
    (BERLIN, datetime(2026, 11, 23, 8, 0, tzinfo=UTC), None, "2026-W47"),
    (BERLIN, datetime(2026, 11, 23, 8, 0, tzinfo=UTC), "2026-W47", None),
    (BERLIN, datetime(2026, 11, 26, 15, 0, tzinfo=UTC), "2026-W46", "2026-W47"),  # down on Monday: Thursday
    (BERLIN, datetime(2026, 11, 29, 22, 59, tzinfo=UTC), "2026-W47", None),  # Sunday night: nothing new
    (BERLIN, datetime(2026, 11, 22, 23, 30, tzinfo=UTC), "2026-W46", None),  # Monday 00:30 in Berlin, before 9
    (BERLIN, datetime(2026, 11, 30, 8, 0, tzinfo=UTC), "2026-W46", "2026-W48"),  # never a week late
    (DigestConfig(day="fri", at=time(17, 0), timezone="America/New_York"),
     datetime(2026, 11, 27, 22, 0, tzinfo=UTC), None, "2026-W47"),
    (DigestConfig(), datetime(2027, 1, 4, 9, 0, tzinfo=UTC), "2026-W52", "2026-W53"),  # 2026 has 53 weeks
])
def test_digest_due(schedule, now, last_sent, due):
    assert digest_due(schedule, now, last_sent) == due


def test_week_bounds_follow_the_brands_time_zone():
    start, end = week_bounds("2026-W47", "Europe/Berlin")
    assert (start.astimezone(UTC), end - start) == (datetime(2026, 11, 15, 23, 0, tzinfo=UTC), timedelta(days=7))


HOSTILE = "Acme ate my data <!channel> <@U024BE7LH> & support is silent"


def fill(store):
    """W46: 4 mentions, 2 complaints, net -0.5. W47: 6 mentions, 4 complaints (reach 5, 500, 50, 5000) and
    2 praise (reach 10, 900), net -0.33."""
    w46, w47 = datetime(2026, 11, 10, 12, tzinfo=UTC), datetime(2026, 11, 18, 12, tzinfo=UTC)
    for _ in range(2):
        add(store, "acme", "reddit", w46, "negative", "complaint", "acme is slow")
        add(store, "acme", "reddit", w46, "neutral", "other", "acme exists")
    for reach, text in ((5, "meh acme"), (500, "acme billing broke"), (50, "acme login fails"), (5000, HOSTILE)):
        add(store, "acme", "x", w47, "negative", "complaint", text, reach=reach, author="<@U1> mallory",
            url="https://x.example/a?b=1&c=<2>|z" if reach == 5000 else None)
    add(store, "acme", "x", w47, "positive", "praise", "acme is nice", reach=10)
    add(store, "acme", "feed", w47, "positive", "praise", "I <3 Acme & its docs", reach=900, title="Why we love Acme")


@pytest.fixture
def setup(database, tmp_path, slack):
    config = config_dict(tmp_path, slack.api_url, [])
    config["brands"]["acme"]["spikes"] = {"enabled": False}
    settings, _ = load_settings(write_config(tmp_path, config))
    store = Store(settings.storage.url)
    fill(store)
    yield settings, store, config
    store.close()


def uploads(store):
    return [row for row in store.outbox(1000) if row.op == "upload"]


def test_digest_says_the_weeks_numbers_the_top_complaints_and_the_best_praise(database, setup):
    settings, store, _ = setup
    Trends(settings, store).run(MONDAY + timedelta(minutes=5))
    (row,) = uploads(store)
    assert (row.kind, row.channel, row.dedupe_key) == ("digest", "#acme-alerts", "digest:acme:2026-W47")
    text = row.payload["text"]
    assert "Weekly digest for Acme Cloud, 2026-W47" in text
    assert "Mentions: *6* (▲ 50%, was 4)" in text
    assert "Net sentiment: *-0.33* (was -0.50)" in text
    assert "Complaints: *4* (▲ 100%, was 2)" in text
    complaints = text.split("*Most-engaged complaints*")[1].split("*Best praise*")[0]
    reaches = [line.split("(reach ")[1].split(")")[0] for line in complaints.strip().splitlines()]
    assert reaches == ["5,000", "500", "50"]
    assert "<https://x.example/a?b=1&amp;c=%3C2%3E%7Cz|" in complaints
    assert "<!channel>" not in text and "<@U024BE7LH>" not in text and "<@U1>" not in text
    assert slack_escape(HOSTILE) in text
    assert "Why we love Acme" in text.split("*Best praise*")[1] and "I &lt;3 Acme &amp; its docs" in text
    png = base64.b64decode(row.payload["content_b64"])
    assert imread(io.BytesIO(png), format="png").shape[:2] == (650, 1000)
    assert row.payload["filename"] == "acme-2026-W47.png"
    assert store.last_digest_week("acme") == "2026-W47"


def test_once_per_week_across_a_restart_and_delivered_as_a_file(database, setup, slack, tmp_path):
    settings, store, config = setup
    slack.channels.add("#acme-alerts")
    pipeline, _, clock = pipeline_with_clock(tmp_path, config, MONDAY + timedelta(minutes=1))
    pipeline.process()
    pipeline.store.close()
    # a restart on the same database file, later the same week
    for later in (timedelta(minutes=10), timedelta(days=2)):
        pipeline, _, clock = pipeline_with_clock(tmp_path, config, MONDAY + later)
        pipeline.process()
        pipeline.store.close()
    (message,) = slack.uploaded()
    assert "Weekly digest for Acme Cloud, 2026-W47" in message["text"]
    assert message["files"][0]["title"] == "Acme Cloud: sentiment and volume up to 2026-W47"
    (upload,) = slack.uploads.values()
    assert upload["content"].startswith(b"\x89PNG") and upload["filename"].startswith("acme-2026-W47")
    assert [r.dedupe_key for r in uploads(store)] == []  # sent, nothing left in the outbox


def test_a_daemon_down_on_monday_sends_when_back_and_next_week_sends_the_next_week(database, setup):
    settings, store, _ = setup
    Trends(settings, store).run(MONDAY + timedelta(days=3))  # back on Thursday
    Trends(settings, Store(settings.storage.url)).run(MONDAY + timedelta(days=7))
    assert [row.dedupe_key for row in uploads(store)] == ["digest:acme:2026-W47", "digest:acme:2026-W48"]


def test_racing_processes_queue_the_digest_once(database, setup):
    settings, store, _ = setup
    other = Store(settings.storage.url)
    alert = NewAlert("digest:acme:2026-W40", "digest", None, "acme", "#acme-alerts", {"text": "x"}, op="upload")
    assert [s.commit_digest("acme", "2026-W40", alert, MONDAY) for s in (store, other)] == [True, False]
    other.close()
    assert len(uploads(store)) == 1


def test_no_digest_before_there_is_anything_to_say(database, tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:9", [])
    settings, _ = load_settings(write_config(tmp_path, config))
    store = Store(settings.storage.url)
    Trends(settings, store).run(MONDAY)
    assert uploads(store) == [] and store.last_digest_week("acme") is None
    store.close()


def test_bad_schedule_is_reported_with_file_line_key_and_value(database, tmp_path):
    from monitor.config import ConfigError

    config = config_dict(tmp_path, "http://127.0.0.1:9", [])
    config["brands"]["acme"]["digest"] = {"day": "monday", "timezone": "Mars/Base"}
    path = write_config(tmp_path, config)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    problems = "\n".join(str(p) for p in error.value.problems)
    assert f"{path}:" in problems and "brands.acme.digest.timezone: 'Mars/Base'" in problems
    assert "brands.acme.digest.day: 'monday'" in problems


def test_weeks_are_the_brands_local_weeks(database, tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:9", [])
    config["brands"]["acme"]["digest"] = {"timezone": "Europe/Berlin"}
    config["brands"]["acme"]["spikes"] = {"enabled": False}
    settings, _ = load_settings(write_config(tmp_path, config))
    store = Store(settings.storage.url)
    fill(store)
    add(store, "acme", "x", datetime(2026, 11, 15, 23, 30, tzinfo=UTC))  # Monday 00:30 in Berlin: W47 there
    Trends(settings, store).run(MONDAY)  # 10:00 in Berlin
    (row,) = uploads(store)
    assert "Mentions: *7* (▲ 75%, was 4)" in row.payload["text"]
    store.close()


def test_a_failing_digest_is_logged_once_and_does_not_stop_the_stage(database, setup, caplog):
    settings, store, _ = setup
    caplog.set_level(logging.INFO, logger="mentionwatch")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE digests RENAME TO digests_away")  # the store is broken for digests
    stage = Trends(settings, store)
    for minutes in (0, 2, 4):
        stage.run(MONDAY + timedelta(minutes=minutes))
    assert len([r for r in caplog.records if "digest:acme failed" in r.getMessage()]) == 1
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE digests_away RENAME TO digests")
    stage.run(MONDAY + timedelta(minutes=6))
    assert [r.dedupe_key for r in uploads(store)] == ["digest:acme:2026-W47"]
    assert any("digest:acme works again" in r.getMessage() for r in caplog.records)
