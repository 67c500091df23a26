"""The query language and the matcher behind it: what a person would call a mention is one, what they
would not is not, a mistake in a query is shown where it is, and the platforms search for at least
what the query keeps."""

from __future__ import annotations

import json
import string
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import ConfigError, load_settings
from monitor.core.labels import Labels
from monitor.core.records import Match, Post, StoredMention
from monitor.matcher import Matcher
from monitor.normalize import normalise, prepare
from connectors.hackernews import to_hackernews
from connectors.reddit.search import to_reddit
from connectors.x.search import to_x
from monitor.query import Facts, QueryError, facts_of, kept_after_labels, never_or_always, parse, unparse

PROPERTY = settings(max_examples=200, deadline=None, database=None)

BRANDS = {
    "acme": {"name": ["Acme Cloud"], "handle": ["@acme_support", "@acmecloud"], "domain": ["acme.io"]},
    "salt": {"name": ["Salt & Pine"]},
    "corona": {"name": ["Corona"], "query": "{Corona}"},
    "cafe": {"name": ["Café Luna"], "fold_accents": False},
    "jet": {"name": ["Jetpack"]},
    "bmw": {"name": ["宝马"]},
}
MATCHER = Matcher(BRANDS)

# Each way a person still reads the name, and the near misses they would not call a mention.
NORMALISATION = [
    ("Ac\u00adme Cloud is down", "acme"),                # soft hyphen
    ("Acme\u200b Cloud is down", "acme"),                # zero-width space
    ("Ac\u200dme Cl\ufeffoud", "acme"),                  # zero-width joiner, BOM
    ("new from Acme\nCloud today", "acme"),              # line break inside the name
    ("new from Ac-\nme Cloud today", "acme"),            # hyphenated across a line end
    ("\u0410\u0441me Cloud outage", "acme"),             # Cyrillic А and с
    ("\u0391CME CL\u039fUD", "acme"),                     # Greek Alpha and Omicron
    ("Acmé Cloud", "acme"),                              # accents folded by default
    ("Äcme Cloud", "acme"),
    ("Salt &amp; Pine reopened", "salt"),                # HTML entity
    ("Salt &#38; Pine", "salt"),
    ("two Acme Clouds", "acme"),                         # plural
    ("Acme Cloud's outage", "acme"),                     # possessives, straight and curly
    ("Acme Cloud\u2019s outage", "acme"),
    ("the Acme Clouds\u2019 outage", "acme"),
    ("ask @acme_support", "acme"),                       # handle with @
    ("ask acme_support about it", "acme"),               # and without (it holds an underscore)
    ("我喜欢Acme Cloud的服务", "acme"),                   # touching CJK text
    ("Acme Cloudの障害", "acme"),
    ("我喜欢宝马汽车", "bmw"),                             # a CJK name inside CJK text
    ("see eu.status.acme.io", "acme"),                   # subdomains of the brand's domain
    ("https://app.acme.io/login failed", "acme"),
    ("Corona with lime", "corona"),                      # case-sensitive name
    ("Café Luna opened", "cafe"),                        # accents kept for this brand
    ("CAFÉ LUNA opened", "cafe"),
]
NOT_MENTIONS = [
    "acme.io.evil.com login",                            # a host that only starts with the domain
    "notacme.io",
    "acmecloud without a prefix",                        # a bare handle that could be an ordinary word
    "write to bob@acme_support",
    "the sun's corona is visible",                       # lower case: the ordinary word
    "CORONA VIRUS",
    "Cafe Luna opened",                                  # accents count for this brand
    "Acme Cloudy weather",                               # a longer word
    "Jetpacked and Jetpackers",
    "Acme Cloudses",
]


@pytest.mark.parametrize(("text", "brand"), NORMALISATION, ids=[repr(c[0])[:30] for c in NORMALISATION])
def test_a_person_would_call_it_a_mention(text, brand):
    match, reason = MATCHER.match(text)
    assert reason is None and brand in match.brands


@pytest.mark.parametrize("text", NOT_MENTIONS)
def test_near_misses_are_not_mentions(text):
    assert MATCHER.match(text) == (None, "no_match")


def test_html_entities_are_unescaped_once_where_text_enters():
    assert prepare("Salt &amp; Pine") == "Salt & Pine"
    assert prepare("a &amp;amp; b") == "a &amp; b"


# --- the language ---------------------------------------------------------------------------------

QUERIES = [
    ("acme cloud", "the acme team moved to the cloud", True),        # implicit AND
    ("acme AND cloud", "acme only", False),
    ("acme OR beta", "beta ships", True),
    ("acme NOT cloud", "acme cloud", False),
    ("acme -cloud", "acme desktop", True),
    ('"acme cloud"', "cloud by acme", False),
    ('"acme cloud"', "ACME   cloud", True),
    ("(acme OR beta) AND (down OR outage)", "beta outage again", True),
    ("(acme OR beta) AND (down OR outage)", "acme is fine", False),
    ("acme NEAR/2 down", "acme is totally down", True),
    ("acme NEAR/2 down", "acme is not at all down", False),
    ("acme NEAR/2 down", "down goes acme", True),
    ("acme ONEAR/2 down", "down goes acme", False),
    ("acme ONEAR/2 down", "acme went down", True),
    ("(acme OR beta) NEAR/1 (down OR slow)", "beta slow", True),
    ("outag*", "outages everywhere", True),
    ("outag*", "no outgoing", False),
    ("{Apple} NOT pie", "Apple ships a phone", True),
    ("{Apple} NOT pie", "apple ships a phone", False),
    ("acme OR ORACLE", "oracle db", True),        # OR is an operator; ORACLE is a word (any case)
    ("acme or beta", "beta only", False),         # lower-case `or` is a word: implicit AND
]


@pytest.mark.parametrize(("query", "text", "expected"), QUERIES)
def test_query_semantics(query, text, expected):
    match, _ = Matcher({"b": {"query": query}}).match(text)
    assert (match is not None) is expected


REDDIT_COMMENT = Post(source="reddit", external_id="t1_x", text="acme is down again https://status.acme.io/x",
                      url="https://www.reddit.com/r/acmecloud/comments/1/_/x", author="kim",
                      extra={"subreddit": "AcmeCloud", "kind": "comment"})
REVIEW = Post(source="app_store", external_id="r1", text="acme crashes", title="★☆☆☆☆ bad", author="lee",
              url="https://apps.apple.com/us/app/id1", extra={"rating": 1})
TWEET = Post(source="x", external_id="1", text="acme rocks", url="https://x.com/u/status/1", author="sam",
             reach=5000, extra={"lang": "en"})

FIELDS = [
    ("acme site:reddit.com", REDDIT_COMMENT, True),
    ("acme site:x.com", REDDIT_COMMENT, False),
    ("acme source:reddit", REDDIT_COMMENT, True),
    ("acme source:acme/reddit", REDDIT_COMMENT, True),
    ("acme sub:acmecloud", REDDIT_COMMENT, True),
    ("acme sub:r/other", REDDIT_COMMENT, False),
    ("acme author:kim", REDDIT_COMMENT, True),
    ("acme type:comment", REDDIT_COMMENT, True),
    ("acme type:post", REDDIT_COMMENT, False),
    ("acme url:acme.io", REDDIT_COMMENT, True),
    ("acme domain:status.acme.io", REDDIT_COMMENT, True),
    ("acme domain:acme.com", REDDIT_COMMENT, False),
    ("acme type:review rating:<=2", REVIEW, True),
    ("acme rating:>=4", REVIEW, False),
    ("acme title:bad", REVIEW, True),
    ("acme title:crashes", REVIEW, False),
    ("acme lang:en reach:>=1000", TWEET, True),
    ("acme reach:>=10000", TWEET, False),
    ("acme rating:<=2", TWEET, False),
]


@pytest.mark.parametrize(("query", "post", "expected"), FIELDS)
def test_fields(query, post, expected):
    facts = facts_of(post, f"acme/{post.source}")
    match, _ = Matcher({"b": {"query": query}}).match(post.searchable, facts)
    assert (match is not None) is expected


def _stored(match, post: Post) -> StoredMention:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    return StoredMention(id=1, source=post.source, external_id=post.external_id, source_id="b/x", brand="b",
                         matched=match.brands, url=post.url, author=post.author, title=post.title, text=post.text,
                         created_at=now, fetched_at=now, reach=post.reach,
                         extra={**post.extra, "after_labels": match.after_labels})


def _labels(intent: str, sentiment: str = "negative", needs_reply: bool = False) -> Labels:
    return Labels(sentiment=sentiment, sentiment_scores={sentiment: 1.0}, intent=intent, intent_scores={intent: 1.0},
                  needs_reply=needs_reply, needs_reply_score=0.0, model="test")


def test_label_fields_are_decided_after_labelling():
    """Stored (a label cannot be known when polling), then not alerted when the labels fail the query."""
    matcher = Matcher({"b": {"query": "acme AND (intent:complaint OR sentiment:negative)"}})
    match, _ = matcher.match(TWEET.text, facts_of(TWEET, "b/x"))
    assert match.brands == {"b": ["acme"]}
    assert match.after_labels == {"b": "intent:complaint OR sentiment:negative"}
    stored = _stored(match, TWEET)
    assert kept_after_labels(stored, _labels("complaint")).matched == {"b": ["acme"]}
    assert kept_after_labels(stored, _labels("praise", "positive")).matched == {}


def test_a_query_that_needs_no_label_is_decided_when_polling():
    match, _ = Matcher({"b": {"query": "acme lang:en"}}).match(TWEET.text, facts_of(TWEET, "b/x"))
    assert match.after_labels == {}


def test_names_aliases_and_exclusions_are_sugar_for_a_query():
    sugar = Matcher({"b": {"name": ["Acme Cloud"], "handle": ["@acmecloud"], "exclude": ["cloud nine"]}})
    query = Matcher({"b": {"query": '("Acme Cloud" OR @acmecloud) NOT "cloud nine"'}})
    for text in ("Acme Cloud down", "hi @acmecloud", "acme cloud nine", "nothing here", "@AcmeCloud and Acme Cloud"):
        assert (sugar.match(text)[0] is None) == (query.match(text)[0] is None), text


def test_source_filter_drops_what_it_does_not_keep():
    matcher = Matcher({"acme": {"name": ["Acme"]}}, filters={"acme/r": "NOT type:comment"})
    assert matcher.match(REDDIT_COMMENT.text, facts_of(REDDIT_COMMENT, "acme/r")) == (None, "filtered")
    assert matcher.match(REDDIT_COMMENT.text, facts_of(REDDIT_COMMENT, "acme/other"))[0] is not None


def test_a_source_that_needs_no_match_still_applies_its_filter():
    """`require_match: false` (a brand's own feed or app): every post is the brand's, within its filter."""
    matcher = Matcher({"acme": {"name": ["Acme"]}}, filters={"acme/reviews": "rating:<=2 OR intent:question"})
    low = facts_of(REVIEW, "acme/reviews")
    high = facts_of(Post(**{**REVIEW.__dict__, "extra": {"rating": 5}}), "acme/reviews")
    assert matcher.match("crashes on launch", low, "acme")[0].brands == {"acme": []}
    assert matcher.match("lovely", high, "acme") == (
        Match({"acme": []}, after_labels={"acme": "intent:question"}), None)
    assert Matcher({}, filters={"acme/reviews": "rating:<=2"}).match("ok", high, "acme") == (None, "filtered")


def test_explain_names_clause_terms_and_exclusion():
    matcher = Matcher({"apple": {"name": ["Apple"], "exclude": ["apple pie"]},
                       "acme": {"query": "(acme NEAR/3 down) OR @acmecloud"}})
    verdicts = {v.brand: v for v in matcher.explain("acme is down, apple pie for @acmecloud")}
    assert verdicts["acme"].matched and verdicts["acme"].clause == "acme NEAR/3 down"
    assert verdicts["acme"].terms == ["acme", "down", "@acmecloud"]
    assert not verdicts["apple"].matched and verdicts["apple"].excluded_by == ["apple pie"]


# --- mistakes ------------------------------------------------------------------------------------

ERRORS = [
    ("acme AND )", 1, 10, "unexpected ')'"),
    ("acme (", 1, 7, "ends too early"),
    ("acme OR\n  ac*", 2, 3, "at least 3 letters"),
    ("foo:bar", 1, 1, "unknown field foo:"),
    ("rating:<=x", 1, 10, "takes a number"),
    ("type:blog", 1, 6, "type: is one of post, comment, review"),
    ("(acme AND beta) NEAR/3 down", 1, 17, "NEAR/3 joins terms"),
    ('acme ""', 1, 6, "empty"),
    ("acme \u200b", 1, 6, "nothing visible"),
]


@pytest.mark.parametrize(("query", "line", "column", "says"), ERRORS)
def test_bad_queries_say_where_and_what_was_expected(query, line, column, says):
    with pytest.raises(QueryError) as err:
        parse(query)
    assert (err.value.line, err.value.column) == (line, column)
    assert says in err.value.reason


def test_validate_points_at_the_problem_in_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("slack: {token: xoxb-1}\nbrands:\n  acme:\n    names: [Acme]\n    slack_channel: '#acme'\n"
                    "    query: 'acme AND (down OR )'\n  beta:\n    names: [Beta]\n    slack_channel: '#beta'\n"
                    "    query: |\n      beta NEAR/3 down\n        OR rating:<=x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={}, check_environment=False)
    text = str(err.value)
    assert f"{path}:6:31: brands.acme.query:" in text and "expected (" in text
    assert "    query: 'acme AND (down OR )'\n                                  ^" in text
    assert f"{path}:12:21: brands.beta.query:" in text and "rating: takes a number" in text


def test_queries_that_never_or_always_match_are_warnings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("slack: {token: xoxb-1}\nbrands:\n  acme:\n    names: [Acme]\n    slack_channel: '#acme'\n"
                    "    query: acme lang:en lang:de\n  beta:\n    names: [Beta]\n    slack_channel: '#beta'\n"
                    "    query: beta OR NOT beta\n", encoding="utf-8")
    _, warnings = load_settings(path, env={}, check_environment=False)
    texts = [str(w) for w in warnings]
    assert any(":6: warning: brands.acme.query" in t and "can never match" in t for t in texts)
    assert any(":10: warning: brands.beta.query" in t and "matches every post" in t for t in texts)


def test_a_query_platforms_cannot_search_for_is_a_warning(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("slack: {token: xoxb-1}\nx: {bearer_token: t}\nbrands:\n  acme:\n    names: [Acme]\n"
                    "    slack_channel: '#acme'\n    query: 'sentiment:negative'\n    sources:\n"
                    "      - {type: x, name: x}\n", encoding="utf-8")
    _, warnings = load_settings(path, env={}, check_environment=False)
    texts = [str(w) for w in warnings]
    assert any(":7: warning: brands.acme.query" in t and "without any of its words" in t for t in texts)
    assert any(":9: warning: brands.acme.sources.0" in t and "x search cannot express" in t for t in texts)


def test_every_platform_source_takes_a_filter(tmp_path):
    """`filter:` is on the source base model: a plug-in's source has it without declaring it, a mistake in
    it is shown where it is, and the pipeline's matcher applies it to that source's posts."""
    path = tmp_path / "c.yaml"
    sources = ("      - {type: feed, name: blog, url: 'https://acme.io/feed', require_match: false,\n"
               "         filter: 'NOT outage'}\n      - {type: hackernews, name: hn, filter: 'type:post OR'}\n")
    path.write_text("slack: {token: xoxb-1}\nbrands:\n  acme:\n    names: [Acme]\n    slack_channel: '#acme'\n"
                    "    sources:\n" + sources, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={}, check_environment=False)
    assert f"{path}:9:" in str(err.value) and "brands.acme.sources.1.filter" in str(err.value)
    path.write_text(path.read_text(encoding="utf-8").replace("type:post OR", "type:post"), encoding="utf-8")
    settings_, _ = load_settings(path, env={}, check_environment=False)
    matcher = Matcher.from_settings(settings_)
    post = Post(source="feed", external_id="1", text="the outage is over", url="https://acme.io/b/1")
    assert matcher.match(post.searchable, facts_of(post, "acme/blog"), "acme") == (None, "filtered")
    kept = replace(post, text="new release")
    assert list(matcher.match(kept.searchable, facts_of(kept, "acme/blog"), "acme")[0].brands) == ["acme"]


@pytest.mark.parametrize(("query", "verdict"), [("a AND NOT a", "never"), ("rating:<=2 rating:>=4 a", "never"),
                                                ("type:post type:comment", "never"), ("a OR NOT a", "always"),
                                                ("a NEAR/2 b", None), ("a AND NOT b", None)])
def test_never_or_always(query, verdict):
    assert never_or_always(parse(query)) == verdict


# --- platforms -----------------------------------------------------------------------------------

def test_translation_to_platform_search():
    node = parse('("Acme Cloud" OR @acmecloud) NEAR/5 (down OR outage*) NOT {Apple} NOT "cloud nine" author:kim')
    assert to_x(node) == '(("Acme Cloud" OR @acmecloud) -"cloud nine" from:kim) -is:retweet'
    assert to_reddit(node) == '("Acme Cloud" OR acmecloud) AND (NOT "cloud nine") AND author:kim'
    assert to_hackernews(node) == ["Acme Cloud", "acmecloud"]
    assert to_x(parse("intent:complaint")) is None  # nothing X can narrow by: the source keeps its default


def test_translation_never_drops_what_the_query_keeps():
    """A platform query is at least as broad: a NOT of something it cannot express exactly is left out."""
    assert "Corona" not in to_x(parse("beer NOT {Corona}"))
    assert "outage" not in to_x(parse("acme NOT outage*"))


def test_a_platforms_search_is_declared_beside_its_connector_and_named_in_its_registry_entry():
    from connectors.registry import platforms
    from monitor.query import Dialect, search_text

    assert {p.type: p.search for p in platforms() if p.search} == {"hackernews": to_hackernews, "reddit": to_reddit,
                                                                  "x": to_x}
    forum = Dialect(platform="forum", joiner=" & ", negate="!{}", fields={"author": "by:{}"})  # a new platform's
    assert search_text(parse('"Acme Cloud" NOT outage author:kim source:forum'), forum) == '"Acme Cloud" & !outage & by:kim'
    assert search_text(parse("acme source:x"), forum) is None  # can never hold there


def test_platform_search_uses_the_brand_query(tmp_path):
    from connectors.hackernews import HackerNewsConnector
    from connectors.reddit import plan_listings

    path = tmp_path / "c.yaml"
    path.write_text("slack: {token: xoxb-1}\nreddit: {client_id: a, client_secret: b}\nbrands:\n  acme:\n"
                    "    names: [Acme]\n    slack_channel: '#acme'\n    query: 'acme (down OR outage) NOT type:review'\n"
                    "    sources:\n      - {type: reddit, name: r, what: search}\n      - {type: hackernews, name: hn}\n",
                    encoding="utf-8")
    settings_, _ = load_settings(path, env={}, check_environment=False)
    reddit, hn = settings_.brands["acme"].sources
    assert [lst.params["q"] for lst in plan_listings(reddit, settings_.brands["acme"])] == ["acme AND (down OR outage)"]
    assert HackerNewsConnector(hn, settings_).queries == ["acme down", "acme outage"]


# --- the commands --------------------------------------------------------------------------------

CONFIG = """slack: {token: xoxb-1}
storage: {url: "sqlite:///%s/x.db"}
routes:
  group_wait: 1m
  routes:
    - match: {intent: [complaint]}
      channel: "#acme-urgent"
      urgent: true
brands:
  acme:
    names: [Acme Cloud]
    exclude: [cloud nine]
    slack_channel: "#acme"
    kudos_channel: "#acme-kudos"
  corona:
    names: [Corona]
    query: "{Corona} NOT virus (beer OR lime OR intent:complaint)"
    slack_channel: "#corona"
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG % tmp_path, encoding="utf-8")
    return str(path)


def test_match_command_explains(config):
    runner = CliRunner()
    result = runner.invoke(app, ["match", "-c", config, "Acme Clouds are down"])
    assert result.exit_code == 0 and 'acme: MATCH  clause: "Acme Cloud"  terms: Acme Cloud' in result.output
    result = runner.invoke(app, ["match", "-c", config, "Acme Cloud nine"])
    assert result.exit_code == 1 and 'excluded by: "cloud nine"' in result.output
    result = runner.invoke(app, ["match", "-c", config, "--brand", "corona", "Corona is awful"])
    assert "corona: undecided" in result.output and "decided once labelled: intent:complaint" in result.output


def test_match_command_reads_jsonl(config):
    lines = [{"text": "a Corona with lime"}, {"text": "the sun's corona"}, {"text": "Acme Cloud", "source": "x"}]
    result = CliRunner().invoke(app, ["match", "-c", config], input="\n".join(json.dumps(x) for x in lines))
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["matched"] for o in out] == [["corona"], [], ["acme"]]
    assert out[0]["brands"][0]["terms"] == ["{Corona}", "lime"]
    bad = CliRunner().invoke(app, ["match", "-c", config], input="not json\n")
    assert bad.exit_code == 2 and "stdin:1" in bad.output


def test_route_test_shows_route_channel_and_inherited_settings(config):
    result = CliRunner().invoke(app, ["route-test", "-c", config, "--brand", "acme", "--source", "x",
                                      "--intent", "complaint", "--sentiment", "negative"])
    assert result.exit_code == 0, result.output
    assert "attention: alert (Complaint), reply clock: yes" in result.output
    assert "route root.0" in result.output and "channel: #acme-urgent\n" in result.output
    assert "group_wait: 1m (inherited)" in result.output and "urgent: True\n" in result.output
    praise = CliRunner().invoke(app, ["route-test", "-c", config, "--brand", "acme", "--source", "x",
                                      "--intent", "praise", "--sentiment", "positive"])
    assert "channel: #acme-kudos" in praise.output
    dropped = CliRunner().invoke(app, ["route-test", "-c", config, "--brand", "corona", "--source", "x",
                                       "--intent", "praise", "--text", "Corona rocks"])
    assert "not alerted" in dropped.output


# --- properties -----------------------------------------------------------------------------------

LETTERS = string.ascii_letters + "éøñ"
word = st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=8)


@PROPERTY
@given(name=st.lists(word, min_size=1, max_size=3).map(" ".join), left=st.sampled_from(LETTERS),
       right=st.text(alphabet=LETTERS, min_size=1, max_size=3), cased=st.booleans(), accents=st.booleans())
def test_no_term_matches_inside_a_longer_word(name, left, right, cased, accents):
    """Neither at the start nor at the end of a longer word; a plural `s`/`es` is the only suffix allowed."""
    brand = {"query": "{" + name.capitalize() + "}"} if cased else {"name": [name]}
    matcher = Matcher({"b": {**brand, "fold_accents": accents}})
    shown = name.capitalize()
    assert matcher.match(f"x {left}{shown} y")[0] is None
    if right.lower() not in ("s", "es"):
        assert matcher.match(f"x {shown}{right} y")[0] is None
    assert matcher.match(f"x {shown} y")[0] is not None


@PROPERTY
@given(handle=st.tuples(word, st.sampled_from(["_", "1", "_hq"])).map("".join), left=st.sampled_from(LETTERS + "_"),
       right=st.sampled_from(LETTERS + "_0"), kind=st.sampled_from(["handle", "hashtag", "domain"]))
def test_handles_hashtags_and_domains_never_match_inside_a_longer_word(handle, left, right, kind):
    term = {"handle": "@" + handle, "hashtag": "#" + handle, "domain": handle.replace("_", "-") + ".io"}[kind]
    bare = term.lstrip("@#")
    matcher = Matcher({"b": {kind: [term]}})
    for text in (f"x {left}{bare} y", f"x {bare}{right} y", f"x {left}{term} y", f"x {term}{right} y"):
        assert matcher.match(text)[0] is None, text
    assert matcher.match(f"x {term}. y")[0] is not None


@PROPERTY
@given(name=word, extra=st.text(alphabet=LETTERS, min_size=1, max_size=3))
def test_prefix_wildcards_only_match_at_a_word_start(name, extra):
    matcher = Matcher({"b": {"query": name + "*"}})
    assert matcher.match(f"a {name}{extra} b")[0] is not None
    assert matcher.match(f"a z{name}{extra} b")[0] is None


@PROPERTY
@given(st.text())
def test_normalise_is_idempotent_in_every_mode(text):
    for fold in (True, False):
        for case in (True, False):
            once = normalise(text, fold_accents=fold, keep_case=case)
            assert normalise(once, fold_accents=fold, keep_case=case) == once


atoms = st.one_of(word, word.map(lambda w: f'"{w} {w}"'), word.map(lambda w: w + "*"),
                  word.map(lambda w: "{" + w.capitalize() + "}"), st.sampled_from(["site:reddit.com", "type:post",
                                                                                   "rating:<=2", "intent:complaint"]))
queries = st.recursive(atoms, lambda inner: st.one_of(
    st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
    st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
    inner.map(lambda q: f"NOT {q}")), max_leaves=6)


@PROPERTY
@given(queries)
def test_unparse_parses_back_to_the_same_query(text):
    node = parse(text)
    assert parse(unparse(node)) == node


@PROPERTY
@given(query=queries, text=st.lists(st.one_of(word, st.sampled_from(["Corona", "beer"])), max_size=12).map(" ".join))
def test_the_prefilter_never_loses_a_match(query, text):
    """Evaluating only the brands whose anchors occur gives the same answer as evaluating every brand."""
    matcher = Matcher({"b": {"query": query}})
    verdict = matcher.explain(text, Facts())[0]
    match, _ = matcher.match(text, Facts())
    assert (match is not None) == (verdict.matched is not False)


def test_a_mention_whose_labels_fail_the_query_is_stored_but_not_alerted(tmp_path, slack):
    from collections import Counter

    from tests.support.routing import NOW, labels, mention_ids, routed_pipeline

    pipeline, store, _ = routed_pipeline(tmp_path, slack, {"group_wait": "0s", "group_by": ["mention"]},
                                         query='"Acme Cloud" AND (intent:complaint OR intent:question)')
    ids = {}
    for external_id, lab in (("c1", labels("negative", "complaint")), ("p1", labels("positive", "praise", True))):
        post = Post("reddit", external_id, f"Acme Cloud {external_id}", url=f"https://example.com/{external_id}",
                    created_at=NOW)
        match, _ = pipeline.matcher.match(post.searchable, facts_of(post, "acme/posts"))
        assert match.after_labels == {"acme": "intent:complaint OR intent:question"}
        post = Post(**{**post.__dict__, "extra": {"after_labels": match.after_labels}})
        (ids[external_id],) = store.commit_poll("acme/posts", [(post, Match(match.brands))], None, Counter(), NOW)
        store.save_labels([(ids[external_id], lab)], NOW)
    pipeline.process(flush_all=True)
    alerted = [i for m in slack.posted() for i in mention_ids(m)]
    assert ids["c1"] in alerted and ids["p1"] not in alerted
    assert {row["id"] for row in store.export_rows(None)} >= set(ids.values())


text_atoms = st.one_of(st.sampled_from(["acme", "cloud", "down"]), st.just('"acme cloud"'), st.just("clou*"),
                       st.just("{Acme}"))
text_queries = st.recursive(text_atoms, lambda inner: st.one_of(
    st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
    st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
    st.tuples(text_atoms, text_atoms).map(lambda p: f"({p[0]} NEAR/1 {p[1]})"),
    inner.map(lambda q: f"NOT {q}")), max_leaves=5)


@PROPERTY
@given(query=text_queries, text=st.lists(st.sampled_from(["acme", "Acme", "cloud", "clouds", "down", "x"]),
                                         max_size=6).map(" ".join))
def test_the_platform_query_is_never_narrower_than_the_query(query, text):
    """What the query keeps, the translated search finds too (Reddit's syntax is ours minus fields)."""
    node = parse(query)
    translated = to_reddit(node)
    if Matcher({"b": {"query": query}}).match(text)[0] is not None and translated is not None:
        assert Matcher({"b": {"query": translated}}).match(text)[0] is not None, translated
