"""One module per platform. Each connector knows its platform and nothing about brands or Slack.

A connector is built as `Connector(source, settings)` and offers `fetch(cursor) -> FetchResult`,
raising `monitor.health.SourceFailure` for any failure. CONNECTORS maps a source `type` to it.
"""

from __future__ import annotations

from connectors.feeds import FeedConnector

CONNECTORS = {
    "feed": FeedConnector,
}


def make_connector(source, settings):
    return CONNECTORS[source.type](source, settings)
