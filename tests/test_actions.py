"""Handled, Snooze, Not relevant, Wrong label: the functions Slack and the CLI share, and the CLI itself."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from classifiers import data
from monitor import actions
from monitor.cli import app
from tests.support.tracker import NOW, H, alert_message, complaint_id, make_world


@pytest.fixture
def world(database, tmp_path, feeds, slack):
    pipeline, store, slack, at = make_world(tmp_path, feeds, slack)
    yield pipeline, store, slack, at
    store.close()


def outbox_size(store) -> int:
    return sum(store.alert_counts().values())


def update_blocks(slack) -> list[str]:
    return [str(params["blocks"]) for _, params in slack.updates()]


def test_handled_closes_once_and_a_second_hand_is_told_who_was_first(database, world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    first = actions.mark_handled(store, pipeline.settings, mention_id, "kim", "slack", NOW + 14 * H / 60)
    assert first.ok
    queued = outbox_size(store)
    second = actions.mark_handled(store, pipeline.settings, mention_id, "sam", "slack", NOW + 17 * H / 60)
    assert not second.ok and "already handled by @kim 3 min ago" in second.message
    for late in (actions.not_relevant, actions.snooze):
        assert not late(store, pipeline.settings, mention_id, "sam", "cli", NOW + H).ok
    assert outbox_size(store) == queued  # refusals queue nothing
    at(NOW + H)
    (blocks,) = update_blocks(slack)
    assert "handled by @kim after 14 min" in blocks
    (response,) = store.responses(mention_id)
    assert (response["responder"], response["via"]) == ("kim", "slack")  # counted as answered


def test_two_hands_at_once_close_it_once(database, world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    results, barrier = [], threading.Barrier(4)

    def press(who: str) -> None:
        barrier.wait()
        results.append(actions.mark_handled(store, pipeline.settings, mention_id, who, "slack", NOW + H))

    threads = [threading.Thread(target=press, args=(f"user{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.ok for r in results) == [False, False, False, True]
    at(NOW + H)
    assert len(slack.updates()) == 1 and len(store.responses(mention_id)) == 1


def test_updates_compose_snooze_label_then_handled(database, world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    assert actions.snooze(store, pipeline.settings, mention_id, "U0SAM123", "slack", NOW + H).ok
    assert actions.wrong_label(store, pipeline.settings, mention_id, "U0SAM123", "slack", NOW + H,
                               intent="question").ok
    assert actions.mark_handled(store, pipeline.settings, mention_id, "U0SAM123", "slack", NOW + 2 * H).ok
    at(NOW + 2 * H)
    snoozed, labelled, handled = update_blocks(slack)
    until = NOW + 2 * H
    assert f"snoozed until <!date^{int(until.timestamp())}^{{time}}|10:00 UTC> by <@U0SAM123>" in snoozed
    assert f"actions:{mention_id}" in snoozed
    assert "label corrected by <@U0SAM123>: complaint → question" in labelled and "snoozed until" in labelled
    assert "handled by <@U0SAM123> after 2 h" in handled and "label corrected" in handled
    assert "snoozed until" not in handled and f"actions:{mention_id}" not in handled
    assert {ts for ts, _ in slack.updates()} == {alert_message(slack)["ts"]}


def test_actions_on_a_mention_without_a_clock_start_one(database, world):
    pipeline, store, _slack, at = world
    praise = next(i for i in range(1, 5) if store.mention_with_labels(i) and store.reply_clock(i) is None)
    assert actions.not_relevant(store, pipeline.settings, praise, "sam", "cli", NOW + H).ok
    assert store.reply_clock(praise).state == "not_relevant"
    at(NOW + 10 * H)
    assert store.reply_clock(praise).state == "not_relevant"  # the tracker never reopens it


def test_refusals_say_why(database, world):
    pipeline, store, _slack, _at = world
    mention_id = complaint_id(store)
    settings = pipeline.settings
    assert actions.mark_handled(store, settings, 999, "sam", "cli", NOW).message == "no mention with id 999"
    assert "positive duration" in actions.snooze(store, settings, mention_id, "sam", "cli", NOW, timedelta(0)).message
    assert "unknown intent 'rant'" in actions.wrong_label(store, settings, mention_id, "sam", "cli", NOW,
                                                          intent="rant").message
    assert not actions.wrong_label(store, settings, mention_id, "sam", "cli", NOW).ok
    assert actions.wrong_label(store, settings, mention_id, "sam", "cli", NOW, sentiment="neutral").ok
    again = actions.wrong_label(store, settings, mention_id, "sam", "cli", NOW, sentiment="neutral")
    assert not again.ok and "already corrected" in again.message
    assert actions.wrong_label(store, settings, mention_id, "sam", "cli", NOW, sentiment="positive").ok
    assert [(r["labelled_by"], r["sentiment"]) for r in store.label_feedback()] == [("sam", "positive")]


def test_cli_actions_exit_codes_and_feedback_export_round_trip(database, world, tmp_path):
    _, store, slack, at = world
    mention_id = complaint_id(store)
    config = str(tmp_path / "config.yaml")
    runner = CliRunner()

    ok = runner.invoke(app, ["wrong-label", str(mention_id), "--intent", "question", "--sentiment", "neutral",
                             "--by", "sam", "-c", config])
    assert ok.exit_code == 0, ok.output
    assert "complaint → question" in ok.stdout
    assert runner.invoke(app, ["snooze", str(mention_id), "--for", "2h", "--by", "sam", "-c", config]).exit_code == 0
    bad_duration = runner.invoke(app, ["snooze", str(mention_id), "--for", "soon", "-c", config])
    assert bad_duration.exit_code == 2 and "soon" in bad_duration.stderr
    assert runner.invoke(app, ["handled", str(mention_id), "--by", "kim", "-c", config]).exit_code == 0
    again = runner.invoke(app, ["not-relevant", str(mention_id), "--by", "sam", "-c", config])
    assert again.exit_code == 1 and "already handled by @kim" in again.stderr
    unknown = runner.invoke(app, ["handled", "4242", "-c", config])
    assert unknown.exit_code == 1 and "no mention with id 4242" in unknown.stderr

    out = tmp_path / "corrections.jsonl"
    assert runner.invoke(app, ["feedback", "export", "-o", str(out), "-c", config]).exit_code == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["model"] and row["labelled_by"] == "sam"
    (example,) = data.feedback(out)  # what `mentionwatch train --feedback FILE` mixes in
    assert example.text == "Acme Cloud lost my data\nTerrible, Acme Cloud deleted my backups and support is silent."
    assert (example.sentiment, example.intents, example.needs_reply) == ("neutral", frozenset({"question"}), True)

    at(NOW + H)  # the daemon's next process run sends what the CLI queued
    blocks = update_blocks(slack)
    assert len(blocks) == 3 and "handled by @kim" in blocks[-1]


def test_status_lines_touch_only_their_mention_in_a_group_message():
    from alerts.messages import (
        actions_block,
        mention_block_id,
        with_label_note,
        with_status,
    )

    def item(i: int) -> list[dict]:
        return [{"type": "section", "block_id": mention_block_id(i), "text": {"type": "mrkdwn", "text": f"m{i}"}},
                {"type": "context", "elements": []}, actions_block(i)]

    group = {"text": "2 complaints", "blocks": [{"type": "header"}, *item(1), *item(2)]}
    snoozed = with_status(group, 2, "snoozed", keep_actions=True)
    closed = with_status(with_label_note(snoozed, 1, "relabelled"), 1, "handled", keep_actions=False)
    closed = with_status(closed, 2, "handled too", keep_actions=False)
    ids = [b.get("block_id") for b in closed["blocks"]]
    assert ids == [None, "mention:1", None, "label:1", "status:1", "mention:2", None, "status:2"]
    assert closed["blocks"][-1]["elements"][0]["text"] == "handled too"
    assert group["blocks"][3]["block_id"] == "actions:1"  # the stored payload itself is never mutated


def test_a_double_click_on_snooze_snoozes_once_and_the_current_label_is_not_a_correction(database, world):
    pipeline, store, slack, at = world
    mention_id = complaint_id(store)
    settings = pipeline.settings
    assert actions.snooze(store, settings, mention_id, "U0SAM123", "slack", NOW + H).ok
    queued = outbox_size(store)
    again = actions.snooze(store, settings, mention_id, "U0SAM123", "slack", NOW + H + timedelta(seconds=2))
    assert not again.ok and "was just snoozed until" in again.message
    assert outbox_size(store) == queued and store.reply_clock(mention_id).snoozed_until == NOW + 2 * H
    later = actions.snooze(store, settings, mention_id, "U0SAM123", "slack", NOW + H + timedelta(minutes=5))
    assert later.ok  # a deliberate second snooze, minutes later, still extends it
    same = actions.wrong_label(store, settings, mention_id, "U0SAM123", "slack", NOW + H, intent="complaint")
    assert not same.ok and "already labelled intent complaint" in same.message
    assert list(store.label_feedback()) == []
    assert actions.wrong_label(store, settings, mention_id, "U0SAM123", "slack", NOW + H, intent="question").ok
