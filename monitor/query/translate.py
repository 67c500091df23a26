"""Translating a query into a platform's search syntax, as far as it can express it, always broader
than the query itself (a platform never filters out what the query keeps).

The machinery is shared; what differs per platform is data: a `Dialect` for searches with AND/OR/NOT
(X, Reddit), `search_words` for a search that only ANDs words (Hacker News). Each platform's
translation is declared beside its connector and named in its registry entry (`Platform.search`),
so a new platform's search needs no edit here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from monitor.query.brands import customised, effective
from monitor.query.syntax import FALSE, And, Const, Field, Near, Node, Not, Or, Term

Search = Callable[[Node], "str | list[str] | None"]  # a platform's translation: its search, or None


@dataclass(frozen=True)
class _Out:
    text: str | None   # None: anything (the platform cannot narrow by this part)
    exact: bool        # the platform's answer is exactly this part's (so NOT of it is safe)


@dataclass(frozen=True)
class Dialect:
    """How a platform's search writes what it can express of a query."""

    platform: str                      # its `type`: what `source:` / `site:` must name to hold there
    joiner: str                        # between ANDed parts: " " or " AND "
    negate: str                        # "-{}" or "NOT {}"
    fields: Mapping[str, str] = field(default_factory=dict)  # our field -> its operator template
    titles: bool = False               # it can search titles only (`title:`)
    marks: bool = False                # it keeps @handles and #hashtags as written
    domain: str | None = None          # a bare domain term as its operator (else the word itself)
    post_type: Callable[[str], str | None] | None = None  # `type:` as its operator; None: never holds


def _quote(text: str) -> str:
    clean = " ".join(text.replace('"', " ").split())
    return clean if re.fullmatch(r"[\w.@#'-]+", clean) else f'"{clean}"'


def _translate(node: Node, d: Dialect) -> _Out | None:
    """None: this part can never hold on this platform; _Out(None, …): the platform cannot narrow it."""
    if isinstance(node, Const):
        return _Out(None, True) if node.value else None
    if isinstance(node, Term):
        if node.kind == "prefix" or (node.title and not d.titles):
            return _Out(None, False)
        text = d.domain.format(node.text) if node.kind == "domain" and d.domain else _quote(node.text)
        if not d.marks and node.kind in ("handle", "hashtag"):
            text = _quote(node.text[1:])
        if node.title:
            text = f"title:{text}"
        return _Out(text, not node.case)
    if isinstance(node, Field):
        if node.name == "source":
            return _Out(None, True) if node.value.split("/")[-1] == d.platform or "/" in node.value else None
        if node.name == "type" and d.post_type is not None:
            operator = d.post_type(node.value)
            return _Out(operator, True) if operator is not None else None
        template = d.fields.get(node.name)
        return _Out(template.format(node.value), True) if template else _Out(None, False)
    if isinstance(node, Not):
        inner = _translate(node.item, d)
        if inner is None:
            return _Out(None, True)
        if inner.text is None or not inner.exact:
            return _Out(None, False)
        return _Out(d.negate.format(paren(inner.text)), True)
    if isinstance(node, Near):  # no platform has proximity: both operands, anywhere
        both = _translate(And((node.left, node.right)), d)
        return both and replace(both, exact=False)
    # A NOT inside an OR holds for nearly every post: the platform cannot narrow that OR.
    parts = [_translate(i, d) if isinstance(node, And) or not isinstance(i, Not) else _Out(None, False)
             for i in node.items]
    if isinstance(node, And):
        if any(p is None for p in parts):
            return None
        known = [p for p in parts if p.text is not None]
        if not known:
            return _Out(None, all(p.exact for p in parts))
        text = d.joiner.join(paren(p.text) for p in known)
        return _Out(text if len(known) > 1 else known[0].text, all(p.exact for p in parts))
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if any(p.text is None for p in parts):
        return _Out(None, False)
    return _Out(" OR ".join(paren(p.text) for p in parts) if len(parts) > 1 else parts[0].text,
                all(p.exact for p in parts))


def _enclosed(text: str) -> bool:
    """Whether the whole text is one parenthesised group (not `(a) AND (b)`)."""
    if not text.startswith("("):
        return False
    depth, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
            if depth == 0:
                return i == len(text) - 1
    return False


def paren(text: str) -> str:
    """The text as one operand: a lone term, "phrase" or -term as is, anything else in parentheses (also
    for a platform adding its own condition after a translated search)."""
    if re.fullmatch(r'-?(?:"[^"]*"|[^\s()"]+)+', text) or _enclosed(text):
        return text
    return f"({text})"


def search_text(node: Node, dialect: Dialect) -> str | None:
    """The platform's search that finds at least what `node` keeps (None: it cannot narrow it at all)."""
    out = _translate(node, dialect)
    return out.text if out and out.text else None


def search_words(node: Node, platform: str, limit: int = 20) -> list[str] | None:
    """For a search that ANDs the words of a query and has no OR (Algolia's): the query as a list of
    queries, one per disjunct of its positive terms (None when it has more than `limit` or a disjunct
    without terms)."""
    clauses = _dnf(node, platform)
    if clauses is None or not clauses or len(clauses) > limit or any(not c for c in clauses):
        return None
    sets = [frozenset(c) for c in clauses]
    kept = [c for c, words in zip(clauses, sets) if not any(other < words for other in sets)]  # A OR (A AND B) is A
    return list(dict.fromkeys(" ".join(dict.fromkeys(c)) for c in kept))


def _dnf(node: Node, platform: str) -> list[list[str]] | None:
    """Disjuncts of positive, searchable words (what HN search can narrow by); None: cannot narrow."""
    if isinstance(node, Term):
        if node.kind == "prefix" or node.title:
            return [[]]
        return [[node.text.lstrip("@#")]]
    if isinstance(node, Field):
        if node.name == "source":
            return [[]] if node.value.split("/")[-1] == platform or "/" in node.value else []
        return [[]]
    if isinstance(node, (Not, Const)):
        return [] if node == FALSE else [[]]
    if isinstance(node, Near):
        node = And((node.left, node.right))
    parts = [_dnf(i, platform) for i in node.items]
    if isinstance(node, Or):
        return [c for p in parts for c in p]
    out: list[list[str]] = [[]]
    for p in parts:
        out = [a + b for a in out for b in p]
        if len(out) > 64:
            return None
    return out


def platform_search(search: Search, brand, source, limit: int = 512) -> str | list[str] | None:
    """The search to run for a brand's query and its source's filter, by the platform's translation
    `search` (a query string, or a list of queries), or None to keep the connector's default search
    (nothing customised, or the platform cannot narrow the query, or it would be longer than `limit`)."""
    if not customised(brand, source):
        return None
    out = search(effective(brand, source))
    return out if out and (isinstance(out, list) or len(out) <= limit) else None
