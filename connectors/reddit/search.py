"""Reddit's search syntax for a brand's query (the registry entry's `search`): AND / OR / NOT, `title:`,
`author:`, `subreddit:`. Reddit's `site:` is the domain a link post points to: our url:/domain: (a host),
not our site:."""

from __future__ import annotations

from monitor.query import Dialect, Node, search_text

DIALECT = Dialect(platform="reddit", joiner=" AND ", negate="NOT {}", titles=True,
                  fields={"author": "author:{}", "sub": "subreddit:{}", "domain": "site:{}"})


def to_reddit(node: Node) -> str | None:
    return search_text(node, DIALECT)
