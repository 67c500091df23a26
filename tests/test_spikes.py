"""Spike detection: pure decisions as tables, then the stage on generated histories with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.messages import slack_escape
from alerts.slack import SlackSender, make_client
from alerts.spikes import HourCount, detect, step
from monitor.config import SlackConfig, SpikeConfig, load_settings
from monitor.store import Store
from monitor.trends import Trends
from tests.support.config import TOKEN, config_dict, write_config
from tests.support.histories import add_many

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=timezone.utc)  # a Wednesday afternoon
CONFIG = SpikeConfig()
HOSTILE = "Acme is down <!channel> <@U024BE7LH> & nobody answers"


def history(usual, last_total: int, last_negative: int = 0, hours: int = 14 * 24) -> list[HourCount]:
    """`usual(h)` -> (total, negative) for each past hour; the last hour as given."""
    return [HourCount(0, last_total, last_negative)] + [HourCount(h, *usual(h)) for h in range(1, hours + 1)]


def steady(h: int) -> tuple[int, int]:
    """4 or 5 an hour; the same hour last week 4 and the week before 5: the usual level is 4.5 either way."""
    return (4 if h % 2 or h == 168 else 5), 0


@pytest.mark.parametrize("name, hours, expected", [
    ("quiet brand plus one extra mention", history(lambda h: (1 if h % 24 == 0 else 0, 0), 1), None),
    ("quiet brand, a handful more than ever", history(lambda h: (0, 0), 6), None),
    ("ordinary wobble", history(steady, 9), None),
    ("tenfold burst", history(steady, 45), ("volume", 45, 4.5)),
    ("negative share jumps at usual volume",
     history(lambda h: (20, 2), 20, 15), ("negative", 15, 2.0)),
    ("short history: all hours are the baseline", history(steady, 45, hours=30), ("volume", 45, 4.5)),
    ("history younger than min_history", history(steady, 45, hours=5), None),
])
def test_detect(name, hours, expected):
    signal = detect(hours, CONFIG)
    assert (None if signal is None else (signal.metric, signal.count, signal.usual)) == expected, name


def test_tenfold_burst_reports_the_size_of_the_jump():
    signal = detect(history(steady, 45), CONFIG)
    assert signal.ratio == 10 and signal.z > CONFIG.z_threshold


ACTIVE = {"id": 1, "calm_since": None}


@pytest.mark.parametrize("active, signal, action, calm_since", [
    (None, None, "none", None),
    (None, "signal", "start", None),
    (ACTIVE, "signal", "none", None),
    (ACTIVE, None, "calm", NOW),
    ({**ACTIVE, "calm_since": NOW - timedelta(minutes=30)}, None, "none", NOW - timedelta(minutes=30)),
    ({**ACTIVE, "calm_since": NOW - timedelta(minutes=30)}, "signal", "stirred", None),
    ({**ACTIVE, "calm_since": NOW - timedelta(minutes=60)}, None, "end", NOW - timedelta(minutes=60)),
])
def test_step(active, signal, action, calm_since):
    real_signal = detect(history(steady, 45), CONFIG) if signal else None
    decision = step(active, real_signal, NOW, CONFIG)
    assert (decision.action, decision.calm_since) == (action, calm_since)


# --- the stage -------------------------------------------------------------------------------------

@pytest.fixture
def trends(database, tmp_path):
    config = config_dict(tmp_path, "http://127.0.0.1:9", [])
    config["brands"]["acme"]["digest"] = {"enabled": False}
    config["brands"]["globex"] = {"names": ["Globex"], "slack_channel": "#globex", "digest": {"enabled": False}}
    settings, _ = load_settings(write_config(tmp_path, config))
    store = Store(settings.storage.url)
    steady_rows, quiet_rows = [], []
    for hour in range(1, 14 * 24 + 1):
        moment = NOW - timedelta(hours=hour, minutes=5)
        steady_rows += [(moment, "neutral", "other", "acme is fine")] * steady(hour)[0]
        if hour % 24 == 0:
            quiet_rows.append((moment, "neutral", "other", "globex"))
    add_many(store, "acme", "reddit", steady_rows)
    add_many(store, "globex", "x", quiet_rows)
    yield settings, store
    store.close()


def spike_rows(store):
    return [row for row in store.outbox(1000) if row.kind in ("spike", "spike_over")]


def test_quiet_brand_with_one_extra_mention_is_not_a_spike(database, trends):
    settings, store = trends
    add_many(store, "globex", "x", [(NOW - timedelta(minutes=10), "negative", "complaint", "globex broke")])
    Trends(settings, store).run(NOW)
    assert spike_rows(store) == [] and store.active_spike("globex") is None and store.active_spike("acme") is None


def test_burst_alerts_once_and_its_end_is_announced_once_in_its_thread(database, trends):
    settings, store = trends
    burst = [(NOW - timedelta(minutes=m % 50 + 1), "negative", "complaint", f"{HOSTILE} #{m}") for m in range(45)]
    add_many(store, "acme", "x", burst)
    stage = Trends(settings, store)
    for minutes in (0, 2, 30):  # the burst stays in the last hour: still the same spike
        stage.run(NOW + timedelta(minutes=minutes))
    (alert,) = spike_rows(store)
    spike = store.active_spike("acme")
    assert spike["alert_id"] == alert.id and spike["metric"] == "volume" and alert.channel == "#acme-alerts"
    text = alert.payload["text"] + str(alert.payload["blocks"])
    assert "45 mentions in the last hour, 10× the usual 4.5" in text
    assert "mostly *complaint*" in text
    assert "<!channel>" not in text and "<@U024BE7LH>" not in text and slack_escape("<!channel>") in text
    assert "<https://example.com/" in text  # the top driving mentions, linked

    restarted = Trends(settings, Store(settings.storage.url))  # state lives in the store, not the stage
    for minutes in (70, 100, 129):  # the burst has left the window: calm since 70, not yet calm_for
        restarted.run(NOW + timedelta(minutes=minutes))
    assert [r.kind for r in spike_rows(store)] == ["spike"]
    for minutes in (131, 140, 200):
        restarted.run(NOW + timedelta(minutes=minutes))
    first, over = spike_rows(store)
    assert (over.kind, over.thread_of, over.channel) == ("spike_over", alert.id, "#acme-alerts")
    assert "is over" in over.payload["text"]
    assert store.active_spike("acme") is None


def test_spike_and_its_end_reach_slack_the_end_in_the_spikes_thread(database, trends, slack):
    settings, store = trends
    slack.channels.add("#acme-alerts")
    sender = SlackSender(make_client(SlackConfig(token=TOKEN, base_url=slack.api_url, timeout=2)), store,
                         lambda: NOW)
    add_many(store, "acme", "x", [(NOW - timedelta(minutes=m % 50 + 1), "negative", "complaint", HOSTILE)
                                  for m in range(45)])
    stage = Trends(settings, store)
    stage.run(NOW)
    sender.deliver()
    for minutes in (70, 131):
        stage.run(NOW + timedelta(minutes=minutes))
    sender.deliver()
    spike, over = slack.posted("#acme-alerts")
    assert "45 mentions in the last hour" in spike["text"] and spike["thread_ts"] is None
    assert over["thread_ts"] == spike["ts"] and "is over" in over["text"]
    assert "<!channel>" not in str(spike["blocks"])
