"""X's search syntax for a brand's query (the registry entry's `search`): space for AND, `-` for NOT,
`from:`, `lang:`, `url:`, `is:reply`; retweets never."""

from __future__ import annotations

from monitor.query import Dialect, Node, paren, search_text

DIALECT = Dialect(platform="x", joiner=" ", negate="-{}", marks=True, domain='url:"{}"',
                  fields={"author": "from:{}", "lang": "lang:{}", "url": 'url:"{}"', "domain": 'url:"{}"'},
                  post_type=lambda value: None if value == "review" else "is:reply" if value == "comment" else "-is:reply")


def to_x(node: Node) -> str | None:
    """X search syntax that finds at least what `node` keeps (None: X cannot narrow it at all)."""
    text = search_text(node, DIALECT)
    return f"{paren(text)} -is:retweet" if text and text.strip("-") else None
