"""The attention rule as the README's table, row by row; the store's clock query never misses what the rule
puts on the clock; and through the pipeline and the Slack emulator: one destination per mention."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from alerts.attention import Attention, attention, attention_of
from monitor.store import schema as t
from tests.support.routing import NOW, INTENTS, add, header, labels, mention_ids, routed_pipeline

HINT = "2-star review"


@pytest.mark.parametrize(("row", "lab", "facts", "expected"), [
    ("team's own post", labels("negative", "complaint"), {"by_team": True}, Attention("none", None, False)),
    ("team's own praise", labels("positive", "praise"), {"by_team": True}, Attention("none", None, False)),
    ("complaint", labels("negative", "complaint"), {}, Attention("alert", "Complaint", True)),
    ("complaint, classifier unsure of reply", labels("negative", "complaint", needs_reply=False), {},
     Attention("alert", "Complaint", True)),
    ("question to other users", labels("neutral", "question", needs_reply=False), {},
     Attention("alert", "Question", True)),
    ("1-2 star review worded as praise", labels("positive", "praise", needs_reply=False), {"hint": HINT},
     Attention("alert", HINT, True)),
    ("1-2 star review, neutral other", labels("neutral", "other", needs_reply=False), {"hint": HINT},
     Attention("alert", HINT, True)),
    ("suggestion to the brand", labels("neutral", "suggestion", needs_reply=True), {},
     Attention("alert", "Suggestion", True)),
    ("praise speaking to the brand", labels("positive", "praise", needs_reply=True), {},
     Attention("kudos", "Praise", True)),
    ("third-person praise", labels("positive", "praise", needs_reply=False), {}, Attention("kudos", "Praise", False)),
    ("phishing in the brand's name", labels("neutral", "other", needs_reply=True), {},
     Attention("alert", "Needs action", True)),
    ("news of an outage (a feed: reach unknown)", labels("negative", "other", needs_reply=False), {"reach": None},
     Attention("alert", "Negative news", False)),
    ("a fine, posted by a big account", labels("negative", "other", needs_reply=False), {"reach": 5000},
     Attention("alert", "Negative news", False)),
    ("a jab in an opinion piece", labels("negative", "suggestion", needs_reply=False), {"reach": 10},
     Attention("alert", "Negative mention", False)),
    ("negative aside by a tiny account", labels("negative", "other", needs_reply=False), {"reach": 3},
     Attention("none", None, False)),
    ("suggestion in a third-party thread", labels("neutral", "suggestion", needs_reply=False), {"reach": None},
     Attention("none", None, False)),
    ("neutral news", labels("neutral", "other", needs_reply=False), {"reach": None}, Attention("none", None, False)),
    ("positive news", labels("positive", "other", needs_reply=False), {"reach": 900}, Attention("none", None, False)),
])
def test_the_attention_table(row, lab, facts, expected):
    assert attention(lab, **facts) == expected, row


def test_the_clock_query_finds_every_mention_the_rule_puts_on_the_clock(database, tmp_path, slack):
    """Every combination of labels and facts, routed for real: the SQL prefilter is a superset of the rule."""
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s"}, kudos_channel="#acme-kudos")
    expected, everything = set(), {}
    combos = itertools.product(INTENTS, ("negative", "neutral", "positive"), (True, False), (None, HINT),
                               (False, True), (None, 3, 5000))
    for n, (intent, sentiment, reply, hint, team, reach) in enumerate(combos):
        extra = {k: v for k, v in (("needs_reply_hint", hint), ("by_team", team)) if v}
        lab = labels(sentiment, intent, needs_reply=reply)
        mention_id = add(store, f"m{n}", lab, extra=extra, reach=reach)
        everything[mention_id] = lab
        if attention(lab, reach=reach, hint=hint, by_team=team).reply_clock:
            expected.add(mention_id)
    while pipeline.route_pending():
        pass
    found = {m.id for m, _, _ in store.clock_candidates(NOW - timedelta(days=1), limit=10_000)}
    assert expected and expected <= found
    pipeline.tracker.tick(NOW)
    with store.engine.connect() as conn:
        clocked = {row.mention_id for row in conn.execute(t.reply_clock.select())}
    assert clocked == expected, "exactly the rule's clocks start"


def test_a_lukewarm_two_star_review_rated_praise_is_one_alert_and_never_kudos(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s"}, kudos_channel="#acme-kudos")
    review = add(store, "r2", labels("positive", "praise", needs_reply=False), source="app_store",
                 source_id="acme/ios", text="Acme Cloud is nice enough I guess", extra={"needs_reply_hint": HINT})
    pipeline.process()
    [message] = slack.posted()
    assert slack.posted("#acme-alerts") == [message] and not slack.posted("#acme-kudos")
    assert header(message) == f"{HINT}: Acme Cloud" and mention_ids(message) == [review]
    assert "Suggested reply" not in str(message["blocks"]), "no thank-you draft for a low rating"
    assert store.reply_clock(review) is not None


def test_suggestions_to_the_brand_and_negative_news_reach_the_team(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s", "group_by": ["mention"]})
    idea = add(store, "s", labels("neutral", "suggestion", needs_reply=True), text="Acme Cloud, please add ARM builds")
    aside = add(store, "s2", labels("neutral", "suggestion", needs_reply=False), reach=2)
    outage = add(store, "n", labels("negative", "other", needs_reply=False), source="feed", source_id="acme/news",
                 text="Acme Cloud suffers a four-hour outage across Europe")
    pipeline.process()
    posted = {mention_ids(m)[0]: header(m) for m in slack.posted("#acme-alerts")}
    assert posted == {idea: "Suggestion: Acme Cloud", outage: "Negative news: Acme Cloud"}
    assert aside not in posted
    assert store.reply_clock(idea) is not None and store.reply_clock(outage) is None, \
        "nobody asked the news a question: eyes, not a reply clock"


def test_praise_owed_a_reply_reaches_the_brand_channel_without_a_kudos_channel(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s"}, reply_within="2h")
    thanks = add(store, "p", labels("positive", "praise", needs_reply=True), text="@acmecloud thanks for the fix!")
    add(store, "p3", labels("positive", "praise", needs_reply=False), text="Acme Cloud is lovely")
    pipeline.process()
    [message] = slack.posted()
    assert slack.posted("#acme-alerts") == [message] and mention_ids(message) == [thanks]
    rendered = str(message["blocks"])
    due = NOW + timedelta(hours=2)  # shown in each reader's time zone, UTC as the fallback
    assert "Suggested reply" in rendered
    assert f"reply by <!date^{int(due.timestamp())}^{{date_short_pretty}} {{time}}|{due:%Y-%m-%d %H:%M} UTC>" in rendered
    assert f"actions:{thanks}" in rendered, "Handled closes its clock like any alert's"
    assert store.reply_clock(thanks).deadline == NOW + timedelta(hours=2)
    assert store.message_of(thanks) is not None, "its reminders go into the kudos message's thread"


def test_the_rule_reads_a_stored_mentions_facts(database, tmp_path, slack):
    _, store, _ = routed_pipeline(tmp_path, slack)
    mention_id = add(store, "x", labels("negative", "other", needs_reply=False), reach=4, extra={"by_team": True})
    mention, lab = store.mention_with_labels(mention_id)
    assert attention_of(mention, lab) == Attention("none", None, False)
