"""Block Kit messages for alerts. Every string a stranger wrote is escaped here and nowhere else."""

from __future__ import annotations

import re
from datetime import datetime

from classifiers.base import Labels

EXCERPT_CHARS = 600
FALLBACK_CHARS = 300
SECTION_LIMIT = 3000
HEADER_LIMIT = 150


def slack_escape(text: str) -> str:
    """Slack decodes only these three; `&` first, or `&lt;` would become `&amp;lt;`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def safe_link(url: str | None, label: str) -> str:
    """`<url|label>` only for http(s) URLs, with `|` and `>` percent-encoded so a URL cannot forge a label."""
    text = slack_escape(truncate(label, 200))
    if not url or not re.match(r"^https?://\S+$", url, re.IGNORECASE):
        return text
    href = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")
    return f"<{href}|{text}>"


def _posted_by(author: str | None, source: str) -> str:
    """The link label for posts without a title, such as tweets and comments."""
    return f"{author} on {source.split('/')[-1]}" if author else f"post on {source}"


def _percent(scores: dict[str, float], label: str) -> str:
    return f"{round(100 * scores.get(label, 0.0))}%"


def mention_message(*, reason: str, brand_name: str, source: str, url: str | None, title: str | None,
                    text: str, author: str | None, reach: int | None, labels: Labels,
                    reply_by: datetime | None) -> dict:
    """The payload of one mention alert: `text` is the notification fallback, `blocks` the message."""
    excerpt = slack_escape(truncate(text or title or "", EXCERPT_CHARS))
    who = slack_escape(truncate(author, 80)) if author else "unknown author"
    facts = [
        f"*{slack_escape(source)}* · {who}" + (f" · reach {reach:,}" if reach is not None else ""),
        f"sentiment *{labels.sentiment}* {_percent(labels.sentiment_scores, labels.sentiment)} · "
        f"intent *{labels.intent}* {_percent(labels.intent_scores, labels.intent)}"
        + (" · low confidence" if labels.low_confidence else ""),
    ]
    if reply_by is not None:
        facts.append(f"reply by {reply_by:%Y-%m-%d %H:%M} UTC")
    header = truncate(f"{reason}: {brand_name}", HEADER_LIMIT)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                     "text": truncate(safe_link(url, title or _posted_by(author, source)),
                                                      SECTION_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": f">{excerpt}" if excerpt else "_(no text)_"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": f} for f in facts]},
    ]
    fallback = f"{slack_escape(header)}: {slack_escape(truncate(text or title or '', FALLBACK_CHARS))}"
    return {"text": fallback, "blocks": blocks}


def source_health_message(source_id: str, transition: str, kind: str | None, message: str | None) -> dict:
    if transition == "recovered":
        text = f":white_check_mark: Source {slack_escape(source_id)} recovered (was {kind or 'failing'})."
    else:
        text = (f":warning: Source {slack_escape(source_id)} is failing ({kind}): "
                f"{slack_escape(truncate(message or '', 500))}")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": text}}]}


# Block ids and action ids shared by the message builder, the Socket Mode handler and message updates:
# each mention in a message has a section `mention:<id>` and, while open, an actions block `actions:<id>`,
# which an update replaces by a context block `status:<id>` ("handled by @sam after 14 min").
ACTIONS = {"handled": "Handled", "snooze_1h": "Snooze 1h", "not_relevant": "Not relevant", "wrong_label": "Wrong label"}


def mention_block_id(mention_id: int) -> str:
    return f"mention:{mention_id}"


def actions_block(mention_id: int) -> dict:
    buttons = [{"type": "button", "action_id": action_id, "value": str(mention_id),
                "text": {"type": "plain_text", "text": label}} for action_id, label in ACTIONS.items()]
    buttons[0]["style"] = "primary"
    return {"type": "actions", "block_id": f"actions:{mention_id}", "elements": buttons}


def status_block(mention_id: int, status: str) -> dict:
    return {"type": "context", "block_id": f"status:{mention_id}",
            "elements": [{"type": "mrkdwn", "verbatim": True, "text": status}]}
