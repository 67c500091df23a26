"""Which brands a post is about: whole words, any case or Unicode form, exclusions per brand.

A false negative is a complaint nobody answers; a false positive is an alert about `something`
when the brand is ETH. The table below is the contract, the properties guard what a table misses,
and the Slack properties guard the one place a stranger's text reaches a channel.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings, strategies as st

from alerts.messages import KudosItem, kudos_message, slack_escape
from monitor.core.labels import Labels
from monitor.config import Settings
from monitor.matcher import Matcher, normalise
from tests.support.config import alert_payload

PROPERTY = settings(max_examples=200, deadline=None, database=None)

CONFIG = Settings.model_validate({
    "slack": {"token": "xoxb-test"},
    "brands": {
        "eth": {"names": ["ETH", "Ethereum Classic"], "slack_channel": "#eth"},
        "acme": {"names": ["Acme Cloud"], "aliases": ["Roadrunner"], "handles": ["acmecloud"],
                 "hashtags": ["acmecloud"], "domains": ["ACME[.]io"], "slack_channel": "#acme"},
        "acmelabs": {"names": ["Acme Labs"], "aliases": ["Roadrunner"], "slack_channel": "#labs"},
        "strasse": {"names": ["Straße Motors"], "slack_channel": "#strasse"},
        "apple": {"names": ["Apple"], "exclude": ["apple pie", "big apple"], "slack_channel": "#apple"},
        "piehub": {"names": ["PieHub"], "slack_channel": "#piehub"},
    },
})
MATCHER = Matcher.from_settings(CONFIG)

CASES = [
    # case and whole words
    ("ETH is up 5% today", {"eth"}, None),
    ("eth is up", {"eth"}, None),
    ("something happened", None, "no_match"),
    ("ethereum is not ETH's ticker", {"eth"}, None),
    ("ethereum only", None, "no_match"),
    ("I sold my eth.", {"eth"}, None),
    ("fees (eth) are high", {"eth"}, None),
    ("eth's price", {"eth"}, None),
    ("ETH/USD chart", {"eth"}, None),
    ("eth2 and eth_usd and Ethernet", None, "no_match"),
    # multi-word names across spaces, tabs and line breaks
    ("Ethereum Classic forks", {"eth"}, None),
    ("ethereum\nclassic", {"eth"}, None),
    ("Ethereum \r\n  Classic", {"eth"}, None),
    ("Ethereum\u00a0Classic", {"eth"}, None),
    ("Ethereum\u2028Classic", {"eth"}, None),
    ("Ethereum\tClassic", {"eth"}, None),
    ("Ethereum Classical music", None, "no_match"),
    # Unicode normalisation
    ("ＥＴＨ rallies", {"eth"}, None),
    ("ＡＣＭＥ ＣＬＯＵＤ is down", {"acme"}, None),
    ("STRASSE MOTORS recall", {"strasse"}, None),
    ("strasse motors", {"strasse"}, None),
    ("Straße Motors", {"strasse"}, None),
    # handles and hashtags
    ("thanks @acmecloud!", {"acme"}, None),
    ("(@AcmeCloud) please help", {"acme"}, None),
    ("write to bob@acmecloud", None, "no_match"),
    ("@acmecloud_support is slow", None, "no_match"),
    ("down again #AcmeCloud", {"acme"}, None),
    ("#acmecloudfail", None, "no_match"),
    ("acmecloud without a prefix", None, "no_match"),
    # domains, plain and defanged
    ("see acme.io for details", {"acme"}, None),
    ("status.acme.io is red", {"acme"}, None),
    ("https://acme.io/x broken", {"acme"}, None),
    ("phishing at acme[.]io", {"acme"}, None),
    ("phishing at ACME[.]IO", {"acme"}, None),
    ("mail support@acme.io.", {"acme"}, None),
    ("acme.io.evil.com login", None, "no_match"),
    ("notacme.io is unrelated", None, "no_match"),
    ("acme.io-mirror.net", None, "no_match"),
    # exclusions drop only their own brand
    ("baked an apple pie", None, "excluded"),
    ("New York, the Big Apple", None, "excluded"),
    ("Apple released a phone", {"apple"}, None),
    ("apple pie recipes on PieHub", {"piehub"}, None),
    # several brands in one post, and a term two brands share
    ("ETH and Acme Cloud in one thread", {"eth", "acme"}, None),
    ("Roadrunner is everywhere", {"acme", "acmelabs"}, None),
    ("", None, "no_match"),
]


@pytest.mark.parametrize(("text", "brands", "reason"), CASES, ids=[repr(c[0])[:40] for c in CASES])
def test_match_table(text, brands, reason):
    match, why = MATCHER.match(text)
    assert (set(match.brands) if match else None, why) == (brands, reason)


def test_match_reports_the_configured_terms_that_hit():
    match, _ = MATCHER.match("Acme Cloud (@ACMECLOUD) is down, see acme[.]io and acme.io")
    assert match.brands == {"acme": ["Acme Cloud", "@acmecloud", "acme.io"]}


def test_one_matcher_finds_any_of_many_brands():
    brands = {f"brand{i}": {"name": [f"Product{i} Suite"], "domain": [f"product{i}.com"]} for i in range(2000)}
    matcher = Matcher(brands)
    match, _ = matcher.match("moving from product1234.com to Product1999 Suite next week")
    assert set(match.brands) == {"brand1234", "brand1999"}
    assert matcher.match("Product2000 Suite") == (None, "no_match")


def test_matcher_without_terms_drops_everything():
    assert Matcher({}).match("anything at all") == (None, "no_match")


# --- properties -----------------------------------------------------------------------------------

LETTERS = string.ascii_letters + "éßøñ"
word = st.text(alphabet=LETTERS, min_size=1, max_size=10)
# No brackets or parentheses: `[.]`/`(dot)` defanging may consume the spaces around the term.
filler = st.text(alphabet=LETTERS + string.digits + " \n\t.,;:!?'\"-_/@#&*+=%$€中文🙂\u00a0", max_size=80)
terms = st.one_of(
    st.lists(word, min_size=1, max_size=3).map(lambda ws: ("name", " ".join(ws))),
    word.map(lambda w: ("handle", "@" + w)),
    word.map(lambda w: ("hashtag", "#" + w)),
    st.tuples(word, st.sampled_from(["io", "com", "co.uk"])).map(lambda p: ("domain", f"{p[0]}.{p[1]}".lower())),
)


@PROPERTY
@given(st.text())
@example("ß\u0301")  # casefold gives "ss\u0301", which NFKC composes again
@example("acme[[.]]io")  # a single defanging pass used to leave "acme[.]io"
def test_normalise_is_idempotent(text):
    once = normalise(text)
    assert normalise(once) == once


@PROPERTY
@given(term=terms, before=filler, after=filler)
def test_a_term_between_spaces_always_matches(term, before, after):
    kind, text = term
    matcher = Matcher({"brand": {kind: [text]}, "other": {"name": ["Unrelated Corp"]}})
    match, reason = matcher.match(f"{before} {text} {after}")
    assert reason is None and "brand" in match.brands


@PROPERTY
@given(name=st.lists(word, min_size=1, max_size=3).map(" ".join), left=st.sampled_from(LETTERS),
       right=st.sampled_from(LETTERS))
def test_a_name_inside_a_longer_word_never_matches(name, left, right):
    matcher = Matcher({"brand": {"name": [name]}})
    assert matcher.match(f"{left}{name}{right}") == (None, "no_match")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@PROPERTY
@given(st.text())
def test_slack_escape_removes_markup_and_round_trips(text):
    escaped = slack_escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert unescape(escaped) == text


LABELS = Labels(sentiment="negative", sentiment_scores={"negative": 0.9, "neutral": 0.05, "positive": 0.05},
                intent="complaint", intent_scores={"complaint": 0.8, "question": 0.2}, needs_reply=True,
                needs_reply_score=0.9, model="test")
stranger = st.text(max_size=300)
urls = st.one_of(st.none(), stranger, stranger.map(lambda s: "https://" + s))


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


@PROPERTY
@given(text=stranger, title=st.one_of(st.none(), stranger), author=st.one_of(st.none(), stranger), url=urls)
@example(text="<!channel> <@U123> <#C123|general>", title="<!here|x>", author="<@U1>",
         url="https://a.io/<!channel>|<@U1>")
def test_stranger_text_cannot_ping_or_mention_in_slack(text, title, author, url):
    alert = alert_payload(7, text, LABELS, url=url, title=title, author=author, brand_name="Acme Cloud",
                          source="acme/reviews")
    kudos = kudos_message([KudosItem(7, "Acme Cloud", "acme/reviews", "Reddit", url, title, text, author,
                                     f"Thanks {author}!")])
    for shown in strings_in(alert) + strings_in(kudos):
        for markup in ("<!", "<@", "<#"):
            assert markup not in shown
