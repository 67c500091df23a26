"""Team replies read from the team accounts' own activity, matched to the mentions they answer.

Reading each waiting thread costs one request per mention, so only a few fit in a rate budget and
older mentions were never checked. Reading what the team accounts themselves posted (X: a recent
search `from:<handle> is:reply`; Reddit: each team user's comment listing) costs one request per
account, whatever the number of waiting mentions, and covers all of them at once. `ReplyLog` keeps
what was read, so each poll only reads the accounts' newest replies, and matches on ids: a reply
answers a mention when it replies to it (parent id) or, where a thread counts as one conversation
(an X conversation, a Reddit post), when it came later in the mention's thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.core.records import TeamReply


class ReplyCandidate(Protocol):
    """A mention waiting for an answer: a stored mention, or a post about to be stored."""

    source: str
    external_id: str
    created_at: datetime | None
    thread_id: str | None
    parent_id: str | None
    extra: dict


@dataclass(frozen=True)
class SeenReply:
    """One reply a team account posted, as the mention matching needs it."""

    reply_id: str
    thread_id: str | None
    parent_id: str | None
    responder: str
    responded_at: datetime
    url: str | None = None


@dataclass
class ReplyLog:
    """The team replies read since `covered_from`; `cursor` is where the next read starts (platform-specific)."""

    covered_from: datetime | None = None
    cursor: dict = field(default_factory=dict)
    replies: dict[str, SeenReply] = field(default_factory=dict)

    def covers(self, since: datetime) -> bool:
        return self.covered_from is not None and self.covered_from <= since

    def restart(self, since: datetime) -> None:
        """Read again from `since` (a mention older than what was read came in, or nothing was read yet)."""
        self.covered_from, self.cursor = since, {}

    def add(self, replies: list[SeenReply]) -> None:
        self.replies.update((r.reply_id, r) for r in replies)

    def forget_before(self, moment: datetime) -> None:
        """Replies older than any mention still waiting can answer none of them."""
        self.replies = {k: r for k, r in self.replies.items() if r.responded_at >= moment}
        if self.covered_from is not None and self.covered_from < moment:
            self.covered_from = moment


def answer_for(mention: ReplyCandidate, replies: list[SeenReply], thread_counts: bool) -> SeenReply | None:
    """The first team reply that answers `mention`: a reply to it, or (`thread_counts`) a later reply in
    its thread. Never the mention itself, never a reply from before it."""
    created = mention.created_at
    hits = [r for r in replies if r.reply_id != mention.external_id
            and (created is None or r.responded_at >= created)
            and (r.parent_id == mention.external_id
                 or (thread_counts and mention.thread_id is not None and r.thread_id == mention.thread_id))]
    return min(hits, key=lambda r: (r.responded_at, r.reply_id), default=None)


def match(mentions: list[ReplyCandidate], log: ReplyLog, platform: str,
          thread_counts=lambda mention: True) -> list[TeamReply]:
    """The TeamReply for each waiting mention that a logged reply answers."""
    replies = list(log.replies.values())
    found = []
    for mention in mentions:
        if (mention.extra or {}).get("by_team"):
            continue
        reply = answer_for(mention, replies, thread_counts(mention))
        if reply is not None:
            found.append(TeamReply(platform, mention.external_id, reply.responder, reply.responded_at, reply.url))
    return found
