"""The Slack receiver's rendering, done when a row is sent: a neutral message (an alert `Message`, or a
kudos message's praise posts) plus the changes queued for it since (statuses, label notes, cross-post
links, deletions) and the channel-budget fold, as Block Kit. Pure: the same row renders the same payload on every attempt, so reconciliation can compare it
with what Slack shows."""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Sequence

from alerts.messages import (KudosItem, handled_status, kudos_message, label_status, mention_block_id,
                             not_relevant_status, render_group, snoozed_status, with_crosspost, with_label_note,
                             with_status)
from monitor.core.messages import Change, Message

DELETED = ":wastebasket: _deleted by its author_"
DELETED_LABEL = "deleted post"
_LINK = re.compile(r"<([^|<>\s]+)\|[^<>]*>")  # a safe_link: its URL has no |, < or >; its label no < or >


def folded_note(per_minute: int) -> dict:
    """What a message folded into another's thread says about why it is there."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text":
            f"_In this thread because the channel got more than {per_minute} messages a minute "
            "(slack.channel_messages_per_minute)._"}]}


def with_deleted(payload: dict, mention_id: int) -> dict:
    """The mention's link labelled `deleted post` (the label was its title, or its author), its excerpt
    replaced, and the fallback text cut to the header, so nothing the author deleted is shown again (a
    message rendered before the deletion, or queued as Block Kit by an older version)."""
    blocks = list(payload.get("blocks") or [])
    at = next((i for i, b in enumerate(blocks) if b.get("block_id") == mention_block_id(mention_id)), None)
    if at is None:
        return _nudge_deleted(payload, mention_id)
    blocks[at] = _unlabelled(blocks[at])
    if at + 1 < len(blocks) and blocks[at + 1].get("type") == "section" and "block_id" not in blocks[at + 1]:
        blocks[at + 1] = _deleted_block()
    header = next((b["text"]["text"] for b in blocks if b.get("type") == "header"), "A post was deleted")
    return {**payload, "text": header, "blocks": blocks}


def _nudge_deleted(payload: dict, mention_id: int) -> dict:
    """A reminder or escalation about the mention without the post it quoted (`messages._summary`: its
    last two lines, the link and the excerpt); one that quoted nothing (a reminder in the alert's thread)
    is left as it is. The fallback text of both never quotes the post."""
    ids = {f"reminder:{mention_id}", f"escalation:{mention_id}"}
    blocks = list(payload.get("blocks") or [])
    at = next((i for i, b in enumerate(blocks) if b.get("block_id") in ids), None)
    lines = blocks[at]["text"]["text"].split("\n") if at is not None else []
    if len(lines) < 3 or not lines[-1].startswith(">"):
        return payload
    blocks[at] = {**blocks[at], "text": {"type": "mrkdwn", "verbatim": True,
                                         "text": "\n".join([*lines[:-2], DELETED])}}
    return {**payload, "blocks": blocks}


def _unlabelled(block: dict) -> dict:
    """The mention's section with only its link kept (`<url|label>`, as `messages.safe_link` writes it)."""
    text = (block.get("text") or {}).get("text", "")
    link = _LINK.match(text)
    shown = f"<{link.group(1)}|{DELETED_LABEL}>" if link else DELETED_LABEL
    return {**block, "text": {"type": "mrkdwn", "verbatim": True, "text": shown}}


def _deleted_block() -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": DELETED}}


def apply(payload: dict, change: Change) -> dict:
    """One change worded into a Block Kit payload; other mentions' blocks are untouched."""
    mention_id, kind = change["mention_id"], change["kind"]
    if kind == "handled":
        status = handled_status(change["by"], change["via"], timedelta(seconds=change["after_s"]))
        return with_status(payload, mention_id, status, keep_actions=False)
    if kind == "snoozed":
        status = snoozed_status(change["by"], datetime.fromisoformat(change["until"]),
                                datetime.fromisoformat(change["at"]))
        return with_status(payload, mention_id, status, keep_actions=True)
    if kind == "not_relevant":
        return with_status(payload, mention_id, not_relevant_status(change["by"]), keep_actions=False)
    if kind == "label":
        return with_label_note(payload, mention_id,
                               label_status(change["by"], [(old, new) for old, new in change["changes"]]))
    if kind == "also":
        return with_crosspost(payload, mention_id, change["source"], change["url"])
    if kind == "deleted":
        return with_deleted(payload, mention_id)
    raise ValueError(f"unknown message change {kind!r}")


def kudos_json(items: list[KudosItem], note: str | None, total: int) -> dict:
    """A kudos message as the outbox stores it: its praise posts and suggested replies, not Block Kit."""
    return {"kudos": {"items": [{**asdict(i), "reply_by": i.reply_by.isoformat() if i.reply_by else None}
                                for i in items], "note": note, "total": total}}


def render(message: dict, changes: Sequence[Change] = (), folded: int | None = None) -> dict:
    """A stored neutral message (an alert `Message`, or a `kudos_json`) as Slack shows it now. A deleted
    mention's text and title are left out before rendering, so neither the blocks nor the notification
    text carry them."""
    gone = {c["mention_id"] for c in changes if c["kind"] == "deleted"}
    if "kudos" in message:
        kudos = message["kudos"]
        items = [KudosItem(**{**i, "reply_by": datetime.fromisoformat(i["reply_by"]) if i["reply_by"] else None})
                 for i in kudos["items"]]
        payload = kudos_message([replace(i, text="", title=None) if i.mention_id in gone else i for i in items],
                                kudos["note"], kudos["total"])
    else:
        parsed = Message.from_json(message)
        payload = render_group(replace(parsed, items=tuple(replace(i, text="", title=None) if i.mention_id in gone
                                                           else i for i in parsed.items)))
    for change in changes:
        payload = apply(payload, change)
    return with_folded(payload, folded)


def with_folded(payload: dict, folded: int | None) -> dict:
    """The fold note at the end of a message the channel budget put into a thread (`folded`: that budget)."""
    if not folded:
        return payload
    return {**payload, "blocks": [*(payload.get("blocks") or []), folded_note(folded)]}
