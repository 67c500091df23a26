"""The pure decisions behind "answered before alerted" and the first run: reply matching, backfill moments,
the summary's words."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alerts.backfill import BacklogItem, summary_text
from monitor.core.labels import Labels
from connectors.team_replies import ReplyLog, SeenReply, answer_for, match
from monitor.core.records import Post
from monitor.pipeline import backfill_before

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
M = timedelta(minutes=1)


def post(external_id: str, thread: str | None, at: datetime, parent: str | None = None, **extra) -> Post:
    return Post("x", external_id, "text", created_at=at, thread_id=thread, parent_id=parent, extra=extra)


def reply(reply_id: str, thread: str | None, parent: str | None, at: datetime) -> SeenReply:
    return SeenReply(reply_id, thread, parent, "@acme_help", at, f"https://x.com/acme_help/status/{reply_id}")


def test_a_reply_answers_the_mention_it_replies_to_or_a_later_one_in_its_thread_when_threads_count():
    mention = post("10", "1", T0)
    direct = reply("11", "1", "10", T0 + 5 * M)
    later_in_thread = reply("12", "1", "3", T0 + 2 * M)
    earlier = reply("9", "1", "3", T0 - M)
    assert answer_for(mention, [direct, later_in_thread, earlier], thread_counts=True) == later_in_thread
    assert answer_for(mention, [direct, later_in_thread, earlier], thread_counts=False) == direct
    assert answer_for(mention, [earlier], thread_counts=True) is None, "a reply from before it answers another"
    assert answer_for(mention, [reply("10", "1", None, T0)], thread_counts=True) is None, "not itself"


def test_matching_skips_the_teams_own_posts_and_reports_responder_time_and_link():
    log = ReplyLog()
    log.add([reply("21", "20", "20", T0 + 3 * M)])
    found = match([post("20", "20", T0), post("22", "20", T0, by_team=True)], log, "x")
    assert [(f.external_id, f.responder, f.responded_at, f.url) for f in found] == [
        ("20", "@acme_help", T0 + 3 * M, "https://x.com/acme_help/status/21")]


def test_a_log_covers_from_where_it_started_and_forgets_replies_no_waiting_mention_can_use():
    log = ReplyLog()
    assert not log.covers(T0)
    log.restart(T0 - 60 * M)
    log.add([reply("1", "a", None, T0 - 50 * M), reply("2", "b", None, T0 - 5 * M)])
    assert log.covers(T0 - 30 * M) and not log.covers(T0 - 90 * M)
    log.forget_before(T0 - 10 * M)
    assert list(log.replies) == ["2"] and log.covered_from == T0 - 10 * M


def test_backfill_is_a_first_poll_or_the_first_after_a_long_outage_and_only_what_is_older_than_the_bound():
    outage, fresh = timedelta(hours=1), timedelta(minutes=10)
    assert backfill_before(True, None, fresh, outage, T0) == T0 - fresh
    assert backfill_before(False, T0 - 2 * outage, fresh, outage, T0) == T0 - fresh
    assert backfill_before(False, T0 - 30 * M, fresh, outage, T0) is None


def test_the_summary_counts_what_still_waits_by_intent():
    def item(intent: str) -> BacklogItem:
        labels = Labels("negative", {}, intent, {}, True, 0.9, "test")
        return BacklogItem(post("1", None, T0), labels, None)

    text = summary_text("Acme Cloud", 140, 3, [item("complaint")] * 12 + [item("question")] * 5,
                        T0 - timedelta(hours=24), T0)
    assert text == ("Backfilled 140 mentions of Acme Cloud from the last 1 d: 12 complaints and 5 questions "
                    "still unanswered (3 already answered by the team).")
    assert summary_text("Acme Cloud", 1, 0, [], T0 - 30 * M, T0).endswith("none waits for an answer.")
