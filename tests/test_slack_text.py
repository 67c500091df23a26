"""Strangers' text cannot format in Slack: marks, code, emoji shortcodes, in link labels too."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alerts.messages import escape
from alerts.slack import SlackSender, make_client
from monitor.config import SlackConfig
from monitor.core.labels import Labels
from monitor.core.records import NewAlert
from monitor.store import Store
from tests.support.config import alert_payload

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
LABELS = Labels("negative", {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, "complaint",
                {"complaint": 0.8, "question": 0.05, "praise": 0.05, "suggestion": 0.05, "other": 0.05},
                True, 0.9, "test-model")
STYLED = "*FREE* _gift_ ~refund~ `rm -rf` ```code``` :tada: :white_check_mark: ＊wide＊ & <!here>"


@pytest.mark.parametrize("text, expected", [
    ("*bold*", "\u2217bold\u2217"),
    ("_italic_", "\u02cditalic\u02cd"),
    ("~strike~", "\u223cstrike\u223c"),
    ("`code` and ```block```", "\u02cbcode\u02cb and \u02cb\u02cb\u02cbblock\u02cb\u02cb\u02cb"),
    (":tada: party", "\u2236tada: party"),
    (":+1: :thumbs-up::skin-tone-2:", "\u2236+1: \u2236thumbs-up:\u2236skin-tone-2:"),
    ("meet at 12:30 or 14:00", "meet at 12:30 or 14:00"),
    ("u/some_user_name and 2*3*4", "u/some_user_name and 2*3*4"),  # inside a word nothing can style
    ("_lead, trail_ _x_y", "\u02cdlead, trail\u02cd \u02cdx_y"),
    ("~~5 don`t", "\u223c\u223c5 don\u02cbt"),
    ("a <b> & c", "a &lt;b&gt; &amp; c"),
    ("<@U1> <!channel>", "&lt;@U1&gt; &lt;!channel&gt;"),
])
def test_strangers_marks_become_look_alikes_and_escaping_stays(text, expected):
    assert escape(text) == expected


def test_an_alert_keeps_our_formatting_and_shows_strangers_marks_literally(slack, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    payload = alert_payload(1, STYLED, LABELS, url="https://blog.example.com/1", title=f"Title {STYLED}",
                            author="*the_boss*")
    store.commit_routing([], [NewAlert("test:1", "mention", None, "acme", "#acme-alerts", payload)], NOW)
    cfg = SlackConfig(token="xoxb-test", base_url=slack.api_url)
    assert SlackSender(make_client(cfg), store, lambda: NOW).deliver().sent == 1
    store.close()
    (message,) = slack.posted()
    texts = [message["text"]] + [t for b in message["blocks"] for t in _texts(b)]
    literal = ("\u2217FREE\u2217 \u02cdgift\u02cd \u223crefund\u223c \u02cbrm -rf\u02cb \u02cb\u02cb\u02cbcode"
               "\u02cb\u02cb\u02cb \u2236tada: \u2236white_check_mark: \ufe61wide\ufe61 &amp; &lt;!here&gt;")
    label = f"<https://blog.example.com/1|Title {literal}>"
    assert any(text == label for text in texts), "the link label shows the marks literally"
    assert any(text == ">" + literal for text in texts), "the excerpt shows the marks literally"
    assert message["text"] == f"Complaint: Acme: {literal}", "so does the notification text"
    (context,) = [t for t in texts if t.startswith("*acme/blog*")]
    assert context == "*acme/blog* · \u2217the_boss\u2217 · Acme · id `1`", "our own bold and code stay"


def _texts(block: dict):
    if isinstance(block.get("text"), dict):
        yield block["text"].get("text", "")
    for element in block.get("elements", []) or []:
        if isinstance(element, dict) and isinstance(element.get("text"), str):
            yield element["text"]
