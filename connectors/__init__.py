"""One module per platform. Each connector knows its platform and nothing about brands or Slack.

A connector is built as `Connector(source, settings, store)`, names its platform in `PLATFORM`
(the `Post.source` of what it finds) and offers `fetch(cursor) -> FetchResult`,
raising `monitor.core.failures.SourceFailure` for any failure. CONNECTORS maps a source `type` to it.
Mentions, cursors and gaps travel in the FetchResult; a connector uses the store only for its
platform's bookkeeping (usage counters such as a monthly read budget).

A connector that can see the brand team's replies also offers
`find_team_replies(awaiting: list[StoredMention]) -> list[TeamReply]`; the pipeline calls it after a
successful poll with the stored mentions of its platform that still wait for an answer.
"""

from __future__ import annotations

from connectors.app_store import AppStoreConnector
from connectors.feeds import FeedConnector
from connectors.hackernews import HackerNewsConnector
from connectors.reddit import RedditConnector
from connectors.x import XConnector

CONNECTORS = {
    "feed": FeedConnector,
    "app_store": AppStoreConnector,
    "hackernews": HackerNewsConnector,
    "reddit": RedditConnector,
    "x": XConnector,
}


def make_connector(source, settings, store=None):
    return CONNECTORS[source.type](source, settings, store=store)
