"""Cross-posts: the same text on two platforms within a day is one alert item listing both links; an answer
on either closes it; through the pipeline, the real slack-sdk and the Slack emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from alerts.crossposts import text_key
from monitor.actions import mark_handled
from monitor.store import Store
from monitor.store.migrate import current_revision, head
from tests.support.database import v1_database_with_a_mention
from tests.support.routing import NOW, add, labels, mention_ids, routed_pipeline

TEXT = "Acme Cloud charged me twice for March and support has ignored my ticket for a week"


@pytest.mark.parametrize(("a", "b", "same"), [
    (("@acmecloud " + TEXT + " https://t.co/abc", None), ("", TEXT.upper() + "!!"), True),  # handle, link, case
    ((TEXT, None), (None, TEXT), True),                      # a Reddit post whose title is the text
    ((TEXT, None), (TEXT.replace("March", "April"), None), False),
])
def test_the_text_key_ignores_what_differs_between_platforms(a, b, same):
    assert (text_key(*a) == text_key(*b)) is same and text_key(*a) is not None


def test_short_texts_are_too_common_to_be_the_same_post():
    assert text_key("is Acme Cloud down?") is None and text_key("") is None


def test_a_cross_post_joins_the_sent_alert_and_an_answer_on_either_closes_it(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "0s", "group_by": ["mention"]})
    first = add(store, "t3_a", labels(), source="reddit", source_id="acme/posts", text=TEXT)
    pipeline.process()
    [message] = slack.posted()
    clock[0] = NOW + timedelta(hours=2)
    later = add(store, "1789", labels(), clock[0], source="x", source_id="acme/x", author="kim_x",
                text=f"@acmecloud {TEXT} https://t.co/zz")
    pipeline.process()
    pipeline.process()
    assert slack.posted() == [message], "no second alert, no thread reply"
    [(ts, update)] = slack.updates()
    assert ts == message["ts"]
    assert "also posted: <https://example.com/1789|acme/x>" in str(update["blocks"])
    assert store.reply_clock(later) is None and store.reply_clock(first).state == "open", "one item, one clock"
    assert store.message_of(later) == store.message_of(first)

    store.record_response(later, "acme_support", clock[0] + timedelta(minutes=5), None, "x", clock[0])
    clock[0] += timedelta(minutes=10)
    pipeline.process()
    assert store.reply_clock(first).state == "handled" and store.reply_clock(first).closed_via == "x"
    assert "answered on X by" in str(slack.updates()[-1][1]["blocks"]), "the answer on X shows on the one item"
    result = mark_handled(store, pipeline.settings, later, "@sam", "cli", clock[0])
    assert not result.ok and f"mention {first} was already answered" in result.message, "Handled acts on the item"
    assert store.reply_clock(later) is None, "one item, one clock"


def test_cross_posts_routed_together_are_one_item_listing_both_links(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "30s"})
    first = add(store, "t3_b", labels(), source="reddit", source_id="acme/posts", text=TEXT)
    add(store, "1790", labels(), source="x", source_id="acme/x", text=TEXT)
    other = add(store, "t3_c", labels(), source="reddit", source_id="acme/posts", text="Acme Cloud lost my data")
    pipeline.process()
    clock[0] = NOW + timedelta(seconds=30)
    pipeline.process()
    [message] = slack.posted()
    assert mention_ids(message) == [first, other]
    assert "also posted: <https://example.com/1790|acme/x>" in str(message["blocks"])
    assert mark_handled(store, pipeline.settings, first, "@sam", "cli", clock[0]).ok
    assert store.notification_counts() == {"queued": 2, "attached": 1}


def test_the_same_text_a_day_later_is_a_new_alert(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "0s", "group_by": ["mention"]})
    add(store, "t3_d", labels(), text=TEXT)
    pipeline.process()
    clock[0] = NOW + timedelta(days=1, minutes=1)
    again = add(store, "1791", labels(), clock[0], source="x", source_id="acme/x", text=TEXT)
    pipeline.process()
    assert [mention_ids(m) for m in slack.posted() if mention_ids(m)][1:] == [[again]]
    assert store.reply_clock(again) is not None


def test_the_same_text_on_one_platform_is_not_a_cross_post(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s", "group_by": ["mention"]})
    ids = [add(store, f"f{i}", labels(), source="feed", source_id=f"acme/feed{i}", text=TEXT) for i in range(2)]
    pipeline.process()
    assert sorted(i for m in slack.posted() for i in mention_ids(m)) == ids, "two sites, two posts"


def test_upgrading_a_version_1_database_adds_the_cross_post_columns(database):
    engine = v1_database_with_a_mention(database, NOW)
    Store(database).close()
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("mentions")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("mentions")}
        assert conn.execute(text("SELECT text, text_hash, crosspost_of FROM mentions")).all() == [("kept", None, None)]
        assert current_revision(conn) == head()
    engine.dispose()
    assert {"text_hash", "crosspost_of"} <= columns
    assert {"ix_mentions_text_hash", "ix_mentions_crosspost_of"} <= indexes
