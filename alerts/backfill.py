"""The one message a brand's backlog gets: what a first run (or the first poll after a long outage) found.

History is not news: an alert per old mention, then an escalation per overdue one, would bury the
channel. Instead each brand gets one top-level summary ("Backfilled 140 mentions of Acme Cloud from
the last 24 h: 12 complaints and 5 questions still unanswered") and the unanswered ones listed in
its thread, with the usual buttons. Pure: the stage in `monitor/backfill.py` decides when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.messages import MessageItem, format_age, slack_escape, truncate
from alerts.neutral import alert_message
from monitor.core.labels import Labels
from monitor.core.records import NewAlert, StoredMention

PER_THREAD_MESSAGE = 10
_PLURAL = {"complaint": "complaints", "question": "questions", "suggestion": "suggestions",
           "praise": "praise posts", "other": "other mentions"}
_ORDER = ("complaint", "question", "suggestion", "praise", "other")


@dataclass(frozen=True)
class BacklogItem:
    mention: StoredMention
    labels: Labels
    deadline: datetime | None  # its reply clock's, when it needs a reply


def _counted(counts: dict[str, int]) -> str:
    parts = [f"{counts[k]} {_PLURAL[k] if counts[k] != 1 else k}" for k in _ORDER if counts.get(k)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def summary_text(brand_name: str, total: int, answered: int, unanswered: list[BacklogItem],
                 oldest: datetime, now: datetime) -> str:
    """"Backfilled 140 mentions of Acme Cloud from the last 24 h: 12 complaints and 5 questions still unanswered"."""
    counts: dict[str, int] = {}
    for item in unanswered:
        counts[item.labels.intent] = counts.get(item.labels.intent, 0) + 1
    head = (f"Backfilled {total} mention{'s' if total != 1 else ''} of {brand_name} from the last "
            f"{format_age(max(now - oldest, timedelta(0)))}")
    waiting = f"{_counted(counts)} still unanswered" if unanswered else "none waits for an answer"
    tail = f" ({answered} already answered by the team)" if answered else ""
    return f"{head}: {waiting}{tail}."


def backfill_messages(brand_id: str, brand_name: str, channel: str, total: int, answered: int,
                      unanswered: list[BacklogItem], oldest: datetime, now: datetime, key: str
                      ) -> list[tuple[NewAlert, list[int]]]:
    """The summary (top-level) and the list of unanswered mentions for its thread, each with the mention
    ids it carries. `key` makes the dedupe keys, so the same backlog is never posted twice."""
    text = summary_text(slack_escape(brand_name), total, answered, unanswered, oldest, now)
    note = ("Their reply clocks run and show them overdue, but nobody is paged for this backlog: "
            "answer or dismiss them from the list in this thread." if unanswered else
            "Nothing from this backlog needs the team.")
    summary = {"text": text, "blocks": [
        {"type": "section", "block_id": f"backfill:{brand_id}",
         "text": {"type": "mrkdwn", "verbatim": True, "text": f":inbox_tray: {truncate(text, 2900)}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": note}]}]}
    out = [(NewAlert(f"backfill:{key}", "backfill", None, brand_id, channel, summary), [])]
    ordered = sorted(unanswered, key=lambda i: (i.deadline or now, i.mention.id))
    parts = [ordered[i:i + PER_THREAD_MESSAGE] for i in range(0, len(ordered), PER_THREAD_MESSAGE)]
    for n, part in enumerate(parts):
        items = [MessageItem(mention_id=i.mention.id, reason=i.labels.intent.capitalize(), brand_name=brand_name,
                             source=i.mention.source_id, url=i.mention.url, title=i.mention.title, text=i.mention.text,
                             author=i.mention.author, reach=i.mention.reach, labels=i.labels, reply_by=i.deadline)
                 for i in part]
        header = truncate(f"Backlog of {brand_name}: unanswered {n * PER_THREAD_MESSAGE + 1}–"
                          f"{n * PER_THREAD_MESSAGE + len(part)} of {len(ordered)}", 150)
        out.append((NewAlert(f"backfill:{key}:{n + 1}", "backfill", part[0].mention.id, brand_id, channel,
                             alert_message(items, header, brand_id, "backfill", None).to_json(), format="neutral"),
                    [i.mention.id for i in part]))
    return out
