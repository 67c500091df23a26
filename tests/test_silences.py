"""Silences: matchers checked like config (clear errors), matching alerts held and stored, released
when the silence ends or is expired (unless handled meanwhile), and the `silence` commands."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from alerts.silences import parse_matchers
from monitor import cli
from monitor.store import schema as t
from monitor.config import Settings
from tests.support.config import config_dict, feed_source, write_config
from tests.support.routing import NOW, add, header, labels, mention_ids, routed_pipeline

SETTINGS = Settings.model_validate({"slack": {"token": "xoxb-x"}, "brands": {"acme": {
    "names": ["Acme"], "slack_channel": "#acme", "sources": [{"type": "feed", "name": "blog",
                                                              "url": "https://blog.example.com/feed"}]}}})


@pytest.mark.parametrize(("args", "expected"), [
    (["brand=acme", "source=x"], {"brand": "acme", "source": "x"}),
    (["source=acme/blog", "intent=complaint", "sentiment=negative", "channel=#acme"],
     {"source": "acme/blog", "intent": "complaint", "sentiment": "negative", "channel": "#acme"}),
    (["brand=beta"], "unknown brand 'beta': expected one of acme"),
    (["team=acme"], "unknown key 'team': expected one of brand, source, intent, sentiment, channel"),
    (["source=twitter"], "unknown source 'twitter': expected one of acme/blog, feed, app_store"),
    (["intent=angry"], "unknown intent 'angry'"),
    (["channel=acme alerts"], "expected a channel name such as #acme-alerts"),
    (["brand"], "expected key=value"),
    (["brand=acme", "brand=acme"], "brand given twice"),
    ([], "expected at least one matcher"),
])
def test_matchers_are_checked(args, expected):
    if isinstance(expected, dict):
        assert parse_matchers(args, SETTINGS) == expected
    else:
        with pytest.raises(ValueError, match=re.escape(expected)):
            parse_matchers(args, SETTINGS)


def test_silenced_alerts_are_held_then_sent_when_the_silence_ends(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "0s"}, reply_within="1d")
    store.add_silence({"brand": "acme", "source": "x"}, "launch day", "sam", NOW, NOW + timedelta(hours=2), NOW)
    held = [add(store, f"x{i}", labels(), source="x", source_id="acme/x") for i in range(2)]
    other = add(store, "r1", labels())
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted()] == [[other]]
    assert store.notification_counts() == {"silenced": 2, "queued": 1}
    [silence] = store.silences()
    assert silence.held == 2 and silence.active(NOW)
    clock[0] = NOW + timedelta(hours=1, minutes=59)
    pipeline.process()
    assert len(slack.posted()) == 1
    clock[0] = NOW + timedelta(hours=2)
    pipeline.process()
    released = slack.posted()[1]
    assert mention_ids(released) == held and header(released) == "2 complaints about Acme Cloud"
    assert "held by silence #1 (“launch day”)" in str(released["blocks"])
    pipeline.process()
    assert len(slack.posted()) == 2


def test_expiring_a_silence_releases_what_is_still_open(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "0s"}, reply_within="1d")
    silence = store.add_silence({"intent": "complaint"}, None, None, NOW, NOW + timedelta(days=1), NOW)
    still_open = add(store, "o", labels())
    handled = add(store, "h", labels())
    pipeline.process()
    assert slack.posted() == []
    with store.engine.begin() as conn:  # handled meanwhile (the reply clock's record of it)
        conn.execute(t.reply_clock.insert().values(mention_id=handled, brand="acme", started_at=NOW,
                                                   deadline=NOW + timedelta(days=1), state="handled"))
    clock[0] = NOW + timedelta(minutes=5)
    assert store.expire_silence(silence, clock[0]) and not store.expire_silence(silence, clock[0])
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted()] == [[still_open]]
    assert "held by silence #1" in str(slack.posted()[0]["blocks"])
    assert store.notification_counts() == {"queued": 1, "dropped": 1}


def test_silence_commands(database, tmp_path, slack):
    config = write_config(tmp_path, config_dict(tmp_path, slack.api_url, [feed_source("blog", "https://b.example/f")]))
    runner = CliRunner()
    added = runner.invoke(cli.app, ["silence", "add", "brand=acme", "source=x", "--for", "2h", "--reason",
                                    "launch day", "--config", str(config)])
    assert added.exit_code == 0, added.output
    assert added.output.startswith("silence #1: brand=acme source=x until ")
    listed = runner.invoke(cli.app, ["silence", "list", "--config", str(config)], terminal_width=200)
    assert re.search(r"1 +│ brand=acme source=x +│ active +│ .* │ 0 +│ launch day", listed.output), listed.output
    bad = runner.invoke(cli.app, ["silence", "add", "brand=acme", "colour=red", "--for", "2h", "--config", str(config)])
    assert bad.exit_code == 2 and "unknown key 'colour'" in bad.output
    bad = runner.invoke(cli.app, ["silence", "add", "brand=acme", "--for", "soon", "--config", str(config)])
    assert bad.exit_code == 2 and "expected a duration" in bad.output
    bad = runner.invoke(cli.app, ["silence", "add", "brand=acme", "--for", "10d", "--config", str(config)])
    assert bad.exit_code == 2 and "at most 7d" in bad.output
    expired = runner.invoke(cli.app, ["silence", "expire", "1", "--config", str(config)])
    assert expired.exit_code == 0 and "silence #1 expired" in expired.output
    again = runner.invoke(cli.app, ["silence", "expire", "1", "--config", str(config)])
    assert again.exit_code == 1 and "no such active silence" in again.output
    listed = runner.invoke(cli.app, ["silence", "list", "--config", str(config)], terminal_width=200)
    assert re.search(r"1 +│ brand=acme source=x +│ ended", listed.output), listed.output


def test_a_silence_added_while_a_burst_waits_holds_it(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "30s"}, reply_within="1d")
    burst = [add(store, f"s{i}", labels(), source="x", source_id="acme/x") for i in range(3)]
    question = add(store, "q", labels("neutral", "question"))
    pipeline.process()
    store.add_silence({"source": "x"}, "launch day", None, NOW + timedelta(seconds=10), NOW + timedelta(hours=1),
                      NOW + timedelta(seconds=10))
    clock[0] = NOW + timedelta(seconds=30)
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted()] == [[question]]
    assert store.silences()[0].held == 3
    clock[0] = NOW + timedelta(hours=1)
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted()] == [[question], burst]
