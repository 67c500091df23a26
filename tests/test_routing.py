"""The route tree as a table (first match wins, continue, inheritance, each match key), what enters it,
praise to kudos, later comments into the alert's thread, spike folding, and `validate` on routes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from alerts.routes import group_key, resolve_routes
from monitor.config import ConfigError, Settings, load_settings
from monitor import cli
from monitor.store import schema as t
from monitor.core.records import NewAlert, StoredMention
from tests.support.config import TOKEN, config_dict, write_config
from tests.support.routing import NOW, add, header, labels, mention_ids, routed_pipeline

BRANDS = {"acme": {"names": ["Acme Cloud"], "slack_channel": "#acme-alerts"},
          "beta": {"names": ["Beta"], "slack_channel": "#beta-alerts"}}


def settings_with(routes: dict) -> Settings:
    return Settings.model_validate({"slack": {"token": "xoxb-x"}, "brands": BRANDS, "routes": routes})


def mention(source: str = "reddit", source_id: str = "acme/posts", reach: int | None = None,
            text: str = "Acme Cloud ate my data") -> StoredMention:
    return StoredMention(1, source, "e1", source_id, "acme", {"acme": []}, None, "kim", None, text, NOW, NOW,
                         reach, {})


TREE = {"channel": "#triage", "group_wait": "10s", "routes": [
    {"match": {"intent": ["complaint"]}, "channel": "#complaints", "continue": True},
    {"match": {"sentiment": ["negative"]}, "group_wait": "1m", "routes": [
        {"match": {"source": ["x"]}, "channel": "#x-negative"},
        {"match": {"reach_at_least": 1000}, "urgent": True},
    ]},
    {"match": {"brand": ["beta"]}, "channel": "#beta-team"},
    {"match": {"needs_reply": False}, "channel": "#fyi"},
    {"match": {"language": ["de"]}, "channel": "#dach"},
    {"match": {"keywords": ["Outage", "down"]}, "channel": "#incidents"},
    {"match": {"source": ["acme/reviews"]}, "channel": "#reviews"},
]}


@pytest.mark.parametrize(("brand", "lab", "m", "expected"), [
    # continue: the complaint route matches and lets the next ones try; nested: first child that matches
    ("acme", labels("negative", "complaint"), mention(), [("root.0", "#complaints"), ("root.1", "#triage")]),
    ("acme", labels("negative", "complaint"), mention("x", "acme/x"), [("root.0", "#complaints"), ("root.1.0", "#x-negative")]),
    ("acme", labels("negative", "question"), mention(reach=5000), [("root.1.1", "#triage")]),
    ("beta", labels("neutral", "question"), mention(), [("root.2", "#beta-team")]),
    ("acme", labels("neutral", "question", needs_reply=False), mention(), [("root.3", "#fyi")]),
    ("acme", labels("neutral", "question", language="de"), mention(), [("root.4", "#dach")]),
    ("acme", labels("neutral", "question"), mention(text="is acme DOWN for anyone?"), [("root.5", "#incidents")]),
    ("acme", labels("neutral", "question"), mention("app_store", "acme/reviews"), [("root.6", "#reviews")]),
    ("acme", labels("neutral", "question"), mention(), [("root", "#triage")]),  # nothing matches: the root
])
def test_route_tree(brand, lab, m, expected):
    settings = settings_with(TREE)
    routes = resolve_routes(settings.routes, brand, settings.brands[brand], m, lab)
    assert [(r.path, r.channel) for r in routes] == expected


def test_children_inherit_what_they_leave_unset():
    settings = settings_with(TREE)
    (urgent,) = resolve_routes(settings.routes, "acme", settings.brands["acme"], mention(reach=5000),
                               labels("negative", "question"))
    assert urgent.group_wait == timedelta(minutes=1), "from its parent"
    assert urgent.channel == "#triage" and urgent.urgent, "channel from the root, urgent its own"
    (root,) = resolve_routes(settings_with({}).routes, "beta", settings.brands["beta"], mention(),
                             labels("neutral", "question"))
    assert (root.channel, root.group_wait, root.group_by) == ("#beta-alerts", timedelta(seconds=30), ("brand",))


def test_group_key_is_route_plus_group_by_values():
    settings = settings_with({"routes": [{"match": {"sentiment": ["positive"]}},
                                         {"match": {"intent": ["complaint"]}, "group_by": ["brand", "intent"]}]})
    (route,) = resolve_routes(settings.routes, "acme", settings.brands["acme"], mention(), labels())
    assert group_key(route, "acme", mention(), labels()) == "root.1|brand=acme|intent=complaint"


# --- through the pipeline, the real slack-sdk and the emulator ----------------------------------

def test_what_needs_a_human_reaches_its_route_grouped_and_escaped(database, tmp_path, slack):
    routes = {"group_wait": "30s", "group_by": ["brand", "intent"],
              "routes": [{"match": {"intent": ["complaint"]}, "channel": "#acme-complaints"}]}
    pipeline, store, clock = routed_pipeline(tmp_path, slack, routes)
    hostile = add(store, "h", labels(), text="Acme Cloud <!channel> down <https://evil.example|login> & more")
    other = add(store, "h2", labels())
    question = add(store, "q", labels("neutral", "question"), source="x", source_id="acme/x", reach=1234)
    add(store, "n", labels("neutral", "other", needs_reply=False))              # nothing to do
    add(store, "team", labels(), extra={"by_team": True})                       # the team's own post
    hinted = add(store, "r", labels("neutral", "other", needs_reply=False), extra={"needs_reply_hint": "1-star review"})
    pipeline.process()
    assert slack.posted() == []
    clock[0] = NOW + timedelta(seconds=30)
    pipeline.process()
    complaints = slack.posted("#acme-complaints")
    assert [(header(m), mention_ids(m)) for m in complaints] == [("2 complaints about Acme Cloud", [hostile, other])]
    rendered = str(complaints[0]["blocks"]) + complaints[0]["text"]
    assert "<!channel>" not in rendered and "<https://evil.example|" not in rendered and "&lt;!channel&gt;" in rendered
    elsewhere = {header(m): m for m in slack.posted("#acme-alerts")}
    assert set(elsewhere) == {"Question: Acme Cloud", "1-star review: Acme Cloud"}
    q = elsewhere["Question: Acme Cloud"]
    assert mention_ids(q) == [question]
    facts = " ".join(e["text"] for e in q["blocks"][3]["elements"])
    assert f"*acme/x* · kim · reach 1,234 · Acme Cloud · id `{question}`" in facts  # the id `handled ID` takes
    assert "sentiment *neutral* 80%" in facts and "intent *question* 60%" in facts
    due = NOW + timedelta(hours=4)  # shown in each reader's time zone, UTC as the fallback
    assert f"reply by <!date^{int(due.timestamp())}^{{date_short_pretty}} {{time}}|{due:%Y-%m-%d %H:%M} UTC>" in facts
    assert [b["type"] for b in q["blocks"]] == ["header", "section", "section", "context", "actions"]
    assert mention_ids(elsewhere["1-star review: Acme Cloud"]) == [hinted]
    assert len(slack.posted()) == 3


def test_later_comments_go_into_the_thread_of_the_alert(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "0s"})
    post = add(store, "t3_post", labels(), thread_id="t3_post")
    pipeline.process()
    clock[0] = NOW + timedelta(minutes=20)
    reply = add(store, "t1_c1", labels(), clock[0], thread_id="t3_post", parent_id="t3_post")
    deeper = add(store, "t1_c2", labels(), clock[0], parent_id="t1_c1")
    unrelated = add(store, "t3_other", labels(), clock[0], thread_id="t3_other")
    pipeline.process()
    first, *rest = slack.posted()
    assert mention_ids(first) == [post] and first["thread_ts"] is None
    in_thread = [m for m in rest if m["thread_ts"] == first["ts"]]
    assert sorted(i for m in in_thread for i in mention_ids(m)) == [reply, deeper]
    assert [mention_ids(m) for m in rest if not m["thread_ts"]] == [[unrelated]]
    assert store.message_of(reply) != store.message_of(post) and store.message_of(post) == 1
    assert store.route_of(deeper) == "root" and store.message_of(9999) is None


def test_a_wave_of_praise_is_one_kudos_message_and_praise_owed_a_reply_starts_a_clock(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "30s"}, kudos_channel="#acme-kudos")
    fans = [add(store, f"p{i}", labels("positive", "praise", needs_reply=True), author=f"fan{i}") for i in range(12)]
    pipeline.process()
    assert slack.posted() == [], "praise waits group_wait like alerts"
    clock[0] = NOW + timedelta(seconds=31)
    pipeline.process()
    first, *rest = slack.posted("#acme-kudos")
    assert header(first) == "12 praise posts for Acme Cloud" and first["thread_ts"] is None
    assert [m["thread_ts"] for m in rest] == [first["ts"]], "the overflow goes into the first message's thread"
    assert sorted(mention_ids(first) + mention_ids(rest[0])) == fans
    with store.engine.connect() as conn:
        clocks = [row.mention_id for row in conn.execute(t.reply_clock.select())]
    assert clocks == fans, "praise speaking to the brand is owed an answer (labels.md): a clock, not an alert"
    assert not slack.posted("#acme-alerts"), "praise never lands in an alert route too"


def test_a_mention_answered_while_its_group_waited_is_not_announced(database, tmp_path, slack):
    from monitor.actions import mark_handled

    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "30s"})
    answered = add(store, "a", labels())
    still_open = add(store, "b", labels())
    pipeline.process()
    assert mark_handled(store, pipeline.settings, answered, "@sam", "cli", NOW + timedelta(seconds=5)).ok
    clock[0] = NOW + timedelta(seconds=31)
    pipeline.process()
    [message] = slack.posted()
    assert mention_ids(message) == [still_open]
    assert store.notification_counts() == {"dropped": 1, "queued": 1}


def test_praise_goes_to_the_kudos_channel_with_a_filled_thank_you(database, tmp_path, slack):
    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s"}, kudos_channel="#acme-kudos",
                                         thank_you="Thanks {author}, glad you like it! (seen on {platform})")
    praise = add(store, "p", labels("positive", "praise", needs_reply=False), author="u_<@U1>_fan",
                 text="Acme Cloud support is <b>great</b>")
    add(store, "team", labels("positive", "praise", needs_reply=False), extra={"by_team": True})
    pipeline.process()
    [kudos] = slack.posted()
    assert kudos["channel"] == slack.posted("#acme-kudos")[0]["channel"]
    assert header(kudos) == "Praise for Acme Cloud on Reddit"
    rendered = str(kudos["blocks"])
    assert "Thanks u\u02cd&lt;@U1&gt;\u02cdfan, glad you like it! (seen on Reddit)" in rendered
    assert "&lt;b&gt;great&lt;/b&gt;" in rendered and "<@U1>" not in rendered
    assert "<https://example.com/p|" in rendered
    assert store.message_of(praise) is None, "praise is no alert"


def test_negatives_fold_into_an_active_spike_thread(database, tmp_path, slack):
    pipeline, store, clock = routed_pipeline(tmp_path, slack, {"group_wait": "0s"})
    store.commit_routing([], [NewAlert("spike:1", "spike", None, "acme", "#acme-alerts",
                                       {"text": "Spike: Acme Cloud", "blocks": None})], NOW)
    with store.engine.begin() as conn:
        conn.execute(t.spikes.insert().values(brand="acme", metric="negative", state="active", started_at=NOW,
                                              alert_id=1, details={}))
    negative = add(store, "neg", labels("negative", "question"))
    question = add(store, "q", labels("neutral", "question"))
    pipeline.process()
    spike, *others = slack.posted()
    assert [(mention_ids(m), m["thread_ts"]) for m in others] == [([negative], spike["ts"]), ([question], None)]
    assert store.message_of(negative) == 2


# --- validate ------------------------------------------------------------------------------------

CONFIG = """\
slack:
  token: xoxb-test
  ops_channel: "#ops"
routes:
  channel: "#triage"
  routes:
    - match: {brand: [acme]}
      routes:
        - match: {brand: [beta]}
          channel: "#never"
    - match: {brand: [gamma]}
    - match: {source: [acme/nope]}
    - match: {intent: [praise]}
    - match: {}
    - match: {sentiment: [negative]}
brands:
  acme:
    names: [Acme]
    slack_channel: "#acme"
  beta:
    names: [Beta]
    slack_channel: "#beta"
"""


def test_validate_reports_routes_that_can_never_match(database, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    _, warnings = load_settings(path)
    found = [(w.line, w.path, w.value) for w in warnings if w.path.startswith("routes")]
    assert found == [
        (9, "routes.routes.0.routes.0.match.brand", "beta"),
        (11, "routes.routes.1.match.brand", "gamma"),
        (12, "routes.routes.2.match.source", "acme/nope"),
        (13, "routes.routes.3.match.intent", "[praise]"),
        (15, "routes.routes.5", "(route)"),
    ]
    messages = {w.path: w.expected for w in warnings}
    assert "contradicts the parent route" in messages["routes.routes.0.routes.0.match.brand"]
    assert "kudos_channel" in messages["routes.routes.3.match.intent"]
    assert "earlier sibling matches everything" in messages["routes.routes.5"]
    result = CliRunner().invoke(cli.app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}:11: warning: routes.routes.1.match.brand: gamma: no such brand" in result.stderr


@pytest.mark.parametrize(("edit", "path", "expected"), [
    ({"routes": {"match": {"brand": ["acme"]}}}, "routes", "root route matches every mention"),
    ({"routes": {"continue": True}}, "routes", "root route matches every mention"),
    ({"routes": {"routes": [{"channel": "acme alerts"}]}}, "routes.routes.0.channel", "#acme-alerts"),
    ({"slack": {"ops_channel": "ops"}}, "slack.ops_channel", "channel id"),
    ({"brands": {"acme": {"kudos_channel": "#Kudos Team"}}}, "brands.acme.kudos_channel", "#acme-alerts"),
    ({"brands": {"acme": {"thank_you": "Thanks {name}!"}}}, "brands.acme.thank_you", "{name}"),
    ({"brands": {"acme": {"thank_you": "Thanks {0}!"}}}, "brands.acme.thank_you", "only {author} and {platform}"),
    ({"routes": {"repeat_interval": "0s"}}, "routes.repeat_interval", "at least 1m"),
    ({"routes": {"escalate_to": ["S0SUPPORT", "@sam"]}}, "routes.escalate_to.1", "^[SUW]"),
])
def test_config_errors_name_the_key_and_what_is_expected(database, tmp_path, edit, path, expected):
    config = config_dict(tmp_path, "https://slack.example/api/", [])
    for key, value in edit.items():
        if key == "brands":
            config["brands"]["acme"].update(value["acme"])
        elif isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value} if key != "routes" else value
    with pytest.raises(ConfigError) as err:
        load_settings(write_config(tmp_path, config))
    [problem] = [p for p in err.value.problems if p.path == path]
    assert expected in problem.expected and problem.line > 0


def test_validate_check_slack_reports_channels_slack_does_not_have(database, tmp_path, slack):
    slack.channels.update({"#acme-alerts", "#acme-kudos"})
    config = config_dict(tmp_path, slack.api_url, [], slack={"token": TOKEN, "base_url": slack.api_url,
                                                             "ops_channel": "#ops-gone"})
    config["brands"]["acme"]["kudos_channel"] = "#acme-kudos"
    config["routes"] = {"routes": [{"match": {"intent": ["complaint"]}, "channel": "#complaints-gone"}]}
    path = write_config(tmp_path, config)
    result = CliRunner().invoke(cli.app, ["validate", "--check-slack", str(path)])
    assert result.exit_code == 78, result.output
    lines = sorted(line.split(": ", 1)[1] for line in result.output.splitlines() if "no such channel" in line)
    assert lines == ["routes.routes.0.channel: '#complaints-gone': no such channel visible to the bot (create it, "
                     "or invite the bot to a private one)",
                     "slack.ops_channel: '#ops-gone': no such channel visible to the bot (create it, or invite "
                     "the bot to a private one)"]
    assert any(call[0] == "conversations.list" for call in slack.calls)
    assert TOKEN not in result.output


def test_an_urgent_item_says_why_and_every_item_its_id(database, tmp_path, slack):
    from alerts.messages import compact

    assert [compact(n) for n in (999, 1000, 15_400, 2_000_000, 1_250_000_000)] == ["999", "1k", "15.4k", "2M", "1.2B"]
    routes = {"group_wait": "0s", "group_by": ["mention"], "routes": [
        {"match": {"reach_at_least": 10000}, "channel": "#acme-urgent", "urgent": True},
        {"match": {"intent": ["complaint"]}, "channel": "#acme-complaints"}]}
    pipeline, store, _clock = routed_pipeline(tmp_path, slack, routes)
    loud = add(store, "loud", labels(), reach=15_400)
    quiet = add(store, "quiet", labels(), reach=12)
    pipeline.process()
    [urgent] = slack.posted("#acme-urgent")
    [calm] = slack.posted("#acme-complaints")
    assert mention_ids(urgent) == [loud] and mention_ids(calm) == [quiet]
    assert ":rotating_light: *urgent*: reach 15.4k" in str(urgent["blocks"])
    assert "urgent" not in str(calm["blocks"]) and f"id `{quiet}`" in str(calm["blocks"])
