"""Cross-posts: the same text posted on two platforms (or twice) within a day is one alert item.

`text_key` is the normalised text's hash the store keeps per routed mention (indexed): links,
@handles, the # sign, case, compatibility forms, punctuation and spacing do not count, so a
complaint pasted from X into Reddit has the key of the original. Short texts ("thanks!", "is it
down?") are too common to be the same post and get no key.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import replace
from datetime import timedelta

from monitor.core.messages import also_posted
from monitor.core.records import Crosspost, NewNotification, StatusUpdate, StoredMention

CROSSPOST_WINDOW = timedelta(days=1)
MIN_WORDS = 6
_DROP = re.compile(r"https?://\S+|www\.\S+|@\w+")  # links and @handles (how X addresses a post)
_NOT_WORD = re.compile(r"[\W_]+")


def text_key(text: str | None, title: str | None = None) -> str | None:
    """The hash of the post's normalised text (its title when the body is empty), or None if too short."""
    words = _NOT_WORD.sub(" ", _DROP.sub(" ", unicodedata.normalize("NFKC", text or title or "").casefold())).split()
    if len(words) < MIN_WORDS:
        return None
    return hashlib.sha256(" ".join(words).encode()).hexdigest()[:40]


def twin_of(mention: StoredMention, candidates: list[Crosspost]) -> Crosspost | None:
    """The earliest earlier alert of the same text on another platform, within CROSSPOST_WINDOW, on one of
    this mention's brands (only those brands' notifications)."""
    at = mention.created_at or mention.fetched_at
    for origin in candidates:
        notes = [n for n in origin.notifications if n.brand in mention.matched]
        if (origin.mention_id != mention.id and origin.source != mention.source and notes
                and abs(at - origin.at) <= CROSSPOST_WINDOW):
            return replace(origin, notifications=notes)
    return None


def attached(mention_id: int, origin: Crosspost) -> list[NewNotification]:
    """A cross-post's notifications: on its earlier twin's routes, `attached` to the twin's item (and to
    the message carrying it, if sent), so it is no item, message or reply clock of its own."""
    return [replace(note, mention_id=mention_id, state="attached", silence_id=None, alert=None)
            for note in origin.notifications]


def link_update(message_id: int, origin: Crosspost, mention: StoredMention) -> StatusUpdate:
    """The update adding a cross-post's link to the message that already carries its twin."""
    return StatusUpdate(message_id, origin.mention_id, f"crosspost:{mention.id}",
                        also_posted(origin.mention_id, mention.source_id, mention.url))
