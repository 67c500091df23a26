"""Slack payloads are always valid, whatever strangers write, and config files never crash `validate`.

A property test feeds every message builder hostile bodies, titles, authors, URLs and brand names and
checks what Slack would check (sizes, block counts) and what we promise (no ping, link or markup a
stranger wrote; no cut link or entity; no invisible or direction-changing characters). A config
fuzz test runs mutated copies of the example config through `validate`: exit 0 or 78, each problem
as file:line.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from alerts.digest import WeekNumbers, digest_payload
from alerts.messages import (KudosItem, MessageItem, escalation_message, group_header, kudos_message,
                             reminder_message, safe_link, source_health_message)
from alerts.neutral import alert_message
from alerts.slack_render import render
from alerts.spikes import Signal, spike_message
from monitor.core.labels import Labels
from monitor import cli

PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
LABELS = Labels(sentiment="negative", sentiment_scores={"negative": 0.9}, intent="complaint",
                intent_scores={"complaint": 0.8}, needs_reply=True, needs_reply_score=0.9, model="test")
PINGS = ("S0ESCAL8", "U0ONCALL")
FRAGMENTS = ["<!channel>", "<!here>", "@here", "<@U024BE7LH>", "<!subteam^S1>", "<#C123>", "<https://evil.example|x>",
             "&", "&amp;", "&lt;", "<", ">", "|", "*bold*", "_it_", "~s~", "`code`", "```", "\n", "\r\n", "\u2028",
             "\u202e", "\u2066", "\u200b", "\ufeff", "\u200f", "\x00", "\x1b[31m", "https://", "javascript:", "é",
             "👨\u200d👩\u200d👧", "\ud800", " " * 50]
HOSTILE = st.lists(st.one_of(st.text(max_size=30), st.sampled_from(FRAGMENTS)), max_size=40).map("".join) | \
    st.sampled_from(["&" * 3000, "<" * 4000, "x" * 5000, "&<>" * 1500])
URLS = st.one_of(st.none(), HOSTILE, st.builds(lambda path: "https://acme.example/" + path, HOSTILE),
                 st.sampled_from(["https://acme.example/a\n", "https://acme.example/a b", "javascript:alert(1)",
                                  "https://acme.example/" + "a&b|c" * 700, "https://acme.example/" + "x" * 3227,
                                  "HTTPS://acme.example/ok", "https://acme.example/\u202egnp.exe"]))

_ENTITY = re.compile(r"&(?:amp|lt|gt);")
_LINK = re.compile(r"<(https?://[^\s<>|]+)\|([^<>]*)>", re.IGNORECASE)
_PING = re.compile(r"<(?:!subteam\^(S[A-Z0-9]+)|@([UW][A-Z0-9]+))>")
# Our own times: Slack shows each reader their time zone; the fallback is plain UTC, never a stranger's text.
_DATE = re.compile(r"<!date\^\d+\^(?:\{date_short_pretty\} )?\{time\}\|(?:\d{4}-\d\d-\d\d )?\d\d:\d\d UTC>")
_INVISIBLE = re.compile("[\u061c\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\x00]")


def texts_of(payload: dict) -> list[tuple[str, str, int]]:
    """(kind, text, limit) of every text Slack reads in the payload."""
    out = [("mrkdwn", payload["text"], 3000)]
    for block in payload.get("blocks") or []:
        if block["type"] == "header":
            out.append(("plain", block["text"]["text"], 150))
        elif block["type"] == "section":
            out.append(("mrkdwn", block["text"]["text"], 3000))
        elif block["type"] == "context":
            assert len(block["elements"]) <= 10
            out += [("mrkdwn", e["text"], 3000) for e in block["elements"]]
        elif block["type"] == "actions":
            assert len(block["elements"]) <= 25
        assert len(block.get("block_id", "")) <= 255
    return out


def assert_valid(payload: dict, urls: list[str | None], pings: tuple[str, ...] = ()) -> None:
    assert len(payload.get("blocks") or []) <= 50
    for kind, text, limit in texts_of(payload):
        assert isinstance(text, str) and 0 < len(text) <= limit, (kind, len(text))
        assert not _INVISIBLE.search(text)
        if kind == "plain":
            continue
        links = _LINK.findall(text)
        for href, label in links:  # only the URL a connector gave, never one a stranger wrote in text
            shown = href.replace("&amp;", "&").replace("%7C", "|").replace("%3C", "<").replace("%3E", ">")
            assert shown in urls
            assert "<" not in label and ">" not in label
        found = {a or b for a, b in _PING.findall(text)}
        assert found <= set(pings)
        bare = _DATE.sub("", _PING.sub("", _LINK.sub("", text)))
        assert "<" not in bare  # no other `<…>` construct: no stranger's ping, link, channel or command
        assert "&" not in _ENTITY.sub("", bare)  # every & starts an entity: none was cut in half
        for href, _ in links:
            assert not re.search(r"\s", href)


ITEM = st.builds(lambda i, text, title, author, url, brand, reach: MessageItem(
    mention_id=i, reason="Complaint", brand_name=brand, source="acme/x", url=url, title=title, text=text,
    author=author, reach=reach, labels=LABELS, reply_by=NOW, held_by=None),
    st.integers(1, 10 ** 9), HOSTILE, st.none() | HOSTILE, st.none() | HOSTILE, URLS, HOSTILE,
    st.none() | st.integers(0, 10 ** 12))


@PROPERTY
@given(st.lists(ITEM, min_size=1, max_size=10))
def test_group_messages_are_valid_whatever_strangers_write(items):
    message = alert_message(items, group_header(items), "acme", "root", "held by silence #3").to_json()
    assert_valid(render(message), [i.url for i in items])  # as Slack renders the stored message when it sends


@PROPERTY
@given(st.lists(st.builds(lambda i, text, title, author, url, brand: KudosItem(
    mention_id=i, brand_name=brand, source="acme/x", platform="x", url=url, title=title, text=text, author=author,
    suggestion=f"Thanks {author}!"), st.integers(1, 10 ** 6), HOSTILE, st.none() | HOSTILE,
    st.none() | HOSTILE, URLS, HOSTILE), min_size=1, max_size=10))
def test_kudos_messages_are_valid(items):
    assert_valid(kudos_message(items), [i.url for i in items])


@PROPERTY
@given(HOSTILE, st.none() | HOSTILE, st.none() | HOSTILE, URLS, HOSTILE, st.booleans())
def test_reminders_and_escalations_are_valid(text, title, author, url, brand, in_thread):
    common = dict(mention_id=7, brand_name=brand, source="acme/x", url=url, title=title, text=text, author=author)
    assert_valid(reminder_message(**common, deadline=NOW, now=NOW + timedelta(hours=1), in_thread=in_thread), [url])
    assert_valid(escalation_message(**common, promise=timedelta(hours=4), deadline=NOW, now=NOW + timedelta(hours=1),
                                    escalate_to=PINGS), [url], PINGS)


@PROPERTY
@given(HOSTILE, st.sampled_from(["broke", "recovered"]))
def test_source_health_messages_are_valid(message, transition):
    assert_valid(source_health_message("acme/x", transition, "bad_payload", message), [])


@PROPERTY
@given(st.lists(st.fixed_dictionaries({"url": URLS, "title": st.none() | HOSTILE, "text": HOSTILE,
                                       "author": st.none() | HOSTILE, "source": st.just("acme/x"),
                                       "reach": st.none() | st.integers(0, 10 ** 9)}), max_size=5), HOSTILE)
def test_spike_and_digest_messages_are_valid(drivers, brand):
    signal = Signal("volume", 42, 42, 9, 4.5, 8.0, 0.2, 0.1)
    assert_valid(spike_message(brand, signal, drivers, "complaint"), [d["url"] for d in drivers])
    week = WeekNumbers(10, 0.1, 3, 2, 3, timedelta(minutes=30))
    digest = digest_payload(brand_id="acme", brand_name=brand, week="2026-W47", this=week, before=week,
                            complaints=drivers, praise=drivers[0] if drivers else None, chart_png_b64="")
    assert_valid({"text": digest["text"]}, [d["url"] for d in drivers])


LINKS = [  # url, whether it becomes a link
    ("https://acme.example/a", True), ("https://acme.example/a\n", False), ("https://acme.example/a b", False),
    ("https://acme.example/a\tb", False), ("\nhttps://acme.example/a", False), ("https://acme.example/\u2028", False),
    ("javascript:alert(1)", False), ("ftp://acme.example/", False), ("https://acme.example/" + "x" * 3227, False),
    ("https://acme.example/\u202eexe.pdf", False), ("https://acme.example/a|<b>", True),
]


def test_links_only_for_http_urls_without_whitespace_anywhere():
    for url, linked in LINKS:
        assert safe_link(url, "post").startswith("<") is linked, url


def test_an_escalation_with_a_huge_url_stays_within_slack_limits():
    payload = escalation_message(mention_id=1, brand_name="Acme", source="acme/x", text="x" * 5000,
                                 url="https://acme.example/" + "a&b" * 1200, title="t" * 500, author="a" * 500,
                                 promise=timedelta(hours=4), deadline=NOW, now=NOW, escalate_to=PINGS)
    assert_valid(payload, ["https://acme.example/" + "a&b" * 1200], PINGS)


# --- config fuzz --------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "config.yaml"
JUNK = ["", "-", ":", "{", "}", "[", "]", "'", '"', "&a", "*a", "!!python/object:os.system", "${", "${X:?}", "$$",
        "null", "~", "-1", "1e999", "0x", "\t", "\ud800", "\x00", "🙂", "a" * 300, "? x", "%", "@", "`", "|", ">"]
ENV = {"SLACK_BOT_TOKEN": "xoxb-fuzz", "SLACK_APP_TOKEN": "xapp-fuzz", "REDDIT_CLIENT_ID": "rid",
       "REDDIT_CLIENT_SECRET": "rsecret", "X_BEARER_TOKEN": "xbearer", "MENTIONWATCH_DB": "sqlite:///:memory:"}


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        how = rng.randrange(6)
        if how == 0:
            del lines[i]
        elif how == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif how == 2 and ":" in lines[i]:
            key, _, _ = lines[i].partition(":")
            lines[i] = f"{key}: {rng.choice(JUNK)}"
        elif how == 3:
            at = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:at] + rng.choice(JUNK) + lines[i][at:]
        elif how == 4:
            lines[i] = " " * rng.randint(0, 6) + lines[i].lstrip()
        else:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(st.integers(0, 2 ** 32))
def test_validate_exits_0_or_78_with_file_and_line_on_any_mutated_config(tmp_path_factory, seed):
    path = tmp_path_factory.mktemp("fuzz") / "config.yaml"
    text = mutate(EXAMPLE.read_text(encoding="utf-8"), random.Random(seed))
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = CliRunner().invoke(cli.app, ["validate", str(path)], env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 78), result.output
    lines = [line for line in result.stderr.splitlines() if line]
    assert all(re.match(rf"{re.escape(str(path))}:\d+: ", line) for line in lines), result.stderr
    if result.exit_code == 78:
        assert any(": warning: " not in line for line in lines), result.stderr
