"""The attention rule: where a labelled mention goes and whether it gets a reply clock, in one place.

Routing (`alerts.rules`), the reply clock (`monitor.tracker`) and the store's SQL prefilter for clocks
all ask this module, so they cannot disagree. It follows ../shared/docs/labels.md: everything that
needs a reply reaches a channel where the team acts, with a clock; negative mentions with reach reach
an alert channel without a clock (nobody asked, but someone should look); praise goes to kudos, with a
clock only when it speaks to the brand. A connector's hint (a 1-2 star review) overrides the text's
labels, so a lukewarm low rating worded as praise is an alert, never kudos too. The README's "Who hears
about what" table is this function, row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from monitor.core.labels import Labels

Destination = Literal["alert", "kudos", "none"]
CLOCK_INTENTS = ("complaint", "question")  # always need a reply (labels.md), whatever needs_reply says
NEGATIVE_REACH = 10  # followers, points or score from which a negative post that asks nothing still alerts


@dataclass(frozen=True)
class Attention:
    """Where a mention goes (an alert route, the kudos channel, or only reports) and why, and whether
    the team owes it a reply (a reply clock with reminders and an escalation)."""

    destination: Destination
    reason: str | None
    reply_clock: bool


NONE = Attention("none", None, False)


def has_reach(reach: int | None) -> bool:
    """Reach unknown (news and blog feeds, comments) counts: a publication is read by more than its
    author; a known reach counts from NEGATIVE_REACH."""
    return reach is None or reach >= NEGATIVE_REACH


def attention(labels: Labels, *, reach: int | None = None, hint: str | None = None,
              by_team: bool = False) -> Attention:
    """The rule, first row that applies wins (see the README table)."""
    if by_team:
        return NONE
    if labels.intent == "complaint":
        return Attention("alert", "Complaint", True)
    if labels.intent == "question":
        return Attention("alert", "Question", True)
    if hint:  # the connector knows better than the text: a 1-2 star review needs an answer, praise or not
        return Attention("alert", hint, True)
    if labels.intent == "suggestion" and labels.needs_reply:
        return Attention("alert", "Suggestion", True)
    if labels.intent == "praise":
        return Attention("kudos", "Praise", labels.needs_reply)
    if labels.intent == "other" and labels.needs_reply:  # e.g. phishing in the brand's name
        return Attention("alert", "Needs action", True)
    if labels.sentiment == "negative" and has_reach(reach):
        return Attention("alert", "Negative news" if labels.intent == "other" else "Negative mention", False)
    return NONE


def attention_of(mention, labels: Labels) -> Attention:
    """The rule for a stored mention (anything with `reach` and `extra`); a post its platform says was
    deleted needs nobody (it is gone; alerting it would repost its text)."""
    extra = mention.extra or {}
    if extra.get("deleted_at"):
        return NONE
    return attention(labels, reach=mention.reach, hint=extra.get("needs_reply_hint"), by_team=bool(extra.get("by_team")))
