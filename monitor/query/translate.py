"""Translating a query into X's, Reddit's and Hacker News's search syntax, as far as each can express
it, always broader than the query itself (a platform never filters out what the query keeps)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from monitor.query.brands import customised, effective
from monitor.query.syntax import FALSE, And, Const, Field, Near, Node, Not, Or, Term


@dataclass(frozen=True)
class _Out:
    text: str | None   # None: anything (the platform cannot narrow by this part)
    exact: bool        # the platform's answer is exactly this part's (so NOT of it is safe)


def _quote(text: str) -> str:
    clean = " ".join(text.replace('"', " ").split())
    return clean if re.fullmatch(r"[\w.@#'-]+", clean) else f'"{clean}"'


_X_FIELDS = {"author": "from:{}", "lang": "lang:{}", "url": 'url:"{}"', "domain": 'url:"{}"'}
# Reddit's `site:` is the domain a link post points to: our url:/domain: (a host), not our site:.
_REDDIT_FIELDS = {"author": "author:{}", "sub": "subreddit:{}", "domain": "site:{}"}


def _translate(node: Node, platform: str) -> _Out | None:
    """None: this part can never hold on this platform; _Out(None, …): the platform cannot narrow it."""
    if isinstance(node, Const):
        return _Out(None, True) if node.value else None
    if isinstance(node, Term):
        if node.kind == "prefix" or (node.title and platform != "reddit"):
            return _Out(None, False)
        text = {"domain": f'url:"{node.text}"' if platform == "x" else _quote(node.text)}.get(node.kind, _quote(node.text))
        if platform != "x" and node.kind in ("handle", "hashtag"):
            text = _quote(node.text[1:])
        if node.title:
            text = f"title:{text}"
        return _Out(text, not node.case)
    if isinstance(node, Field):
        if node.name == "source":
            return _Out(None, True) if node.value.split("/")[-1] == platform or "/" in node.value else None
        if node.name == "type" and platform == "x":
            return _Out("is:reply" if node.value == "comment" else "-is:reply", True) if node.value != "review" else None
        template = {"x": _X_FIELDS, "reddit": _REDDIT_FIELDS}.get(platform, {}).get(node.name)
        return _Out(template.format(node.value), True) if template else _Out(None, False)
    if isinstance(node, Not):
        inner = _translate(node.item, platform)
        if inner is None:
            return _Out(None, True)
        if inner.text is None or not inner.exact:
            return _Out(None, False)
        return _Out(f"-{_paren(inner.text)}" if platform == "x" else f"NOT {_paren(inner.text)}", True)
    if isinstance(node, Near):  # no platform has proximity: both operands, anywhere
        both = _translate(And((node.left, node.right)), platform)
        return both and replace(both, exact=False)
    # A NOT inside an OR holds for nearly every post: the platform cannot narrow that OR.
    parts = [_translate(i, platform) if isinstance(node, And) or not isinstance(i, Not) else _Out(None, False)
             for i in node.items]
    if isinstance(node, And):
        if any(p is None for p in parts):
            return None
        known = [p for p in parts if p.text is not None]
        if not known:
            return _Out(None, all(p.exact for p in parts))
        text = " ".join(_paren(p.text) for p in known) if platform == "x" else " AND ".join(_paren(p.text) for p in known)
        return _Out(text if len(known) > 1 else known[0].text, all(p.exact for p in parts))
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if any(p.text is None for p in parts):
        return _Out(None, False)
    return _Out(" OR ".join(_paren(p.text) for p in parts) if len(parts) > 1 else parts[0].text,
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


def _paren(text: str) -> str:
    """The text as one operand: a lone term, "phrase" or -term as is, anything else in parentheses."""
    if re.fullmatch(r'-?(?:"[^"]*"|[^\s()"]+)+', text) or _enclosed(text):
        return text
    return f"({text})"


def to_x(node: Node) -> str | None:
    """X search syntax that finds at least what `node` keeps (None: X cannot narrow it at all)."""
    out = _translate(node, "x")
    return f"{_paren(out.text)} -is:retweet" if out and out.text and out.text.strip("-") else None


def to_reddit(node: Node) -> str | None:
    out = _translate(node, "reddit")
    return out.text if out and out.text else None


def to_hackernews(node: Node, limit: int = 20) -> list[str] | None:
    """Algolia ANDs the words of a query and has no OR: the query as a list of queries, one per
    disjunct of its positive terms (None when it has more than `limit` or a disjunct without terms)."""
    clauses = _dnf(node)
    if clauses is None or not clauses or len(clauses) > limit or any(not c for c in clauses):
        return None
    sets = [frozenset(c) for c in clauses]
    kept = [c for c, words in zip(clauses, sets) if not any(other < words for other in sets)]  # A OR (A AND B) is A
    return list(dict.fromkeys(" ".join(dict.fromkeys(c)) for c in kept))


def _dnf(node: Node) -> list[list[str]] | None:
    """Disjuncts of positive, searchable words (what HN search can narrow by); None: cannot narrow."""
    if isinstance(node, Term):
        if node.kind == "prefix" or node.title:
            return [[]]
        return [[node.text.lstrip("@#")]]
    if isinstance(node, Field):
        if node.name == "source":
            return [[]] if node.value.split("/")[-1] == "hackernews" or "/" in node.value else []
        return [[]]
    if isinstance(node, (Not, Const)):
        return [] if node == FALSE else [[]]
    if isinstance(node, Near):
        node = And((node.left, node.right))
    parts = [_dnf(i) for i in node.items]
    if isinstance(node, Or):
        return [c for p in parts for c in p]
    out: list[list[str]] = [[]]
    for p in parts:
        out = [a + b for a in out for b in p]
        if len(out) > 64:
            return None
    return out


def platform_search(platform: str, brand, source, limit: int = 512) -> str | list[str] | None:
    """The search to run on `platform` for a brand's query and its source's filter (X, Reddit: a query
    string; hackernews: a list of queries), or None to keep the connector's default search (nothing
    customised, or the platform cannot narrow the query, or it would be longer than `limit`)."""
    if not customised(brand, source):
        return None
    node = effective(brand, source)
    if platform == "hackernews":
        return to_hackernews(node)
    text = to_x(node) if platform == "x" else to_reddit(node)
    return text if text and len(text) <= limit else None
