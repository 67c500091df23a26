"""Evaluating a query against a post: the facts known about it, three-valued evaluation, the
matcher's prefilter keys, and the step that settles what was left for the labels.

- its terms go into the matcher's single Aho-Corasick automaton (monitor/matcher.py), with the
  terms one of which must occur for the query to hold (`anchors`), so one pass over a post finds the
  few brands worth evaluating;
- it is evaluated with three values: a field nobody knows yet (labels before labelling, a field of
  a bare text) is unknown, and `evaluate` keeps what is left to decide later, as a residual tree that
  the poll stores as query text and `kept_after_labels` decides once the post is labelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Iterable
from urllib.parse import urlsplit

from monitor.query.syntax import (FALSE, LABEL_FIELDS, NUMERIC_FIELDS, TRUE, And, Const, Field, Near, Node, Not, Or,
                                  QueryError, Term, parse, terms_in)

# --- the matcher's prefilter ------------------------------------------------------------------------

def anchors(node: Node, keys: Callable[[Term], Iterable[str]],
            shared: Callable[[str], int] = lambda key: 1) -> frozenset[str] | None:
    """Keys one of which must occur in the text for `node` to hold, or None when it can hold without
    any (a NOT, a field alone): the matcher's prefilter. Of an AND it takes the child whose keys the
    fewest queries share (`shared`), then the longest: a brand name, not a common context word such as
    `outage` that many queries use, gates the evaluation."""
    if isinstance(node, Term):
        return frozenset(keys(node))
    if isinstance(node, Near):
        return anchors(And((node.left, node.right)), keys, shared)
    if isinstance(node, Or):
        parts = [anchors(i, keys, shared) for i in node.items]
        return None if any(p is None for p in parts) else frozenset().union(*parts)
    if isinstance(node, And):
        parts = [p for p in (anchors(i, keys, shared) for i in node.items) if p is not None]
        return min(parts, key=lambda p: (sum(map(shared, p)), -min(map(len, p), default=0))) if parts else None
    if isinstance(node, Const) and not node.value:
        return frozenset()
    return None


# --- what is known about a post --------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.I)


@dataclass(frozen=True)
class Facts:
    """What fields are evaluated against. None means unknown (the query's answer may then be unknown);
    `post_known` says the post's own fields are all known (a missing rating then means no rating)."""

    post_known: bool = False
    source: str | None = None
    source_id: str | None = None
    author: str | None = None
    title: str | None = None
    kind: str | None = None
    sub: str | None = None
    lang: str | None = None
    site: str | None = None
    links: tuple[str, ...] = ()
    rating: int | None = None
    reach: int | None = None
    labelled: bool = False
    intent: str | None = None
    sentiment: str | None = None
    needs_reply: bool | None = None


_KIND = {"story": "post", "post": "post", "comment": "comment"}


def facts_of(post, source_id: str | None = None) -> Facts:
    """A connector's Post as facts (the connectors' `extra` keys: subreddit, kind, lang, rating, link)."""
    extra = post.extra or {}
    # By what the post carries, never by platform: a star rating makes a review, a parent a comment.
    kind = _KIND.get(extra.get("kind")) or ("review" if "rating" in extra else "comment" if post.parent_id else "post")
    links = [u for u in (post.url, extra.get("link")) if isinstance(u, str)]
    links += _URL.findall(post.text or "")
    rating = extra.get("rating")
    return Facts(post_known=True, source=post.source, source_id=source_id, author=post.author, title=post.title,
                 kind=kind, sub=extra.get("subreddit"), lang=extra.get("lang"),
                 site=_host(post.url) if post.url else None, links=tuple(_strip_scheme(u) for u in links),
                 rating=rating if isinstance(rating, int) and not isinstance(rating, bool) else None,
                 reach=post.reach)


def with_labels(facts: Facts, labels) -> Facts:
    """Facts once the classifier has spoken (its language too, where the platform gave none)."""
    return replace(facts, labelled=True, intent=labels.intent, sentiment=labels.sentiment,
                   needs_reply=labels.needs_reply, lang=facts.lang or getattr(labels, "language", None))


def _strip_scheme(url: str) -> str:
    return re.sub(r"^[a-z]+://", "", url.strip().lower()).removeprefix("www.")


def _host(url: str) -> str:
    return (urlsplit(url if "://" in url else "//" + url).hostname or "").removeprefix("www.")


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


COMPARE = {"=": int.__eq__, "<=": int.__le__, ">=": int.__ge__, "<": int.__lt__, ">": int.__gt__}


def field_value(f: Field, facts: Facts) -> bool | None:
    """True, False, or None when the facts do not know yet."""
    name = f.name
    if name in LABEL_FIELDS:
        if not facts.labelled:
            return None
        actual = {"intent": facts.intent, "sentiment": facts.sentiment,
                  "needs_reply": None if facts.needs_reply is None else str(facts.needs_reply).lower()}[name]
        return actual == f.value
    if name == "lang" and facts.lang is None and not facts.labelled:
        return None  # the classifier's language decides, later
    if not facts.post_known and name != "lang":
        return None
    if name == "source":
        return f.value in (facts.source, facts.source_id)
    if name == "site":
        return facts.site is not None and _under(facts.site, f.value.split("/")[0]) and \
            ("/" not in f.value or any(link.startswith(f.value) for link in facts.links))
    if name in ("url", "domain"):
        if "/" in f.value:
            return any(link.startswith(f.value) or ("." + f.value) in link for link in facts.links)
        return any(_under(_host(link), f.value) for link in facts.links)
    if name == "sub":
        return (facts.sub or "").lower() == f.value.removeprefix("r/")
    if name == "author":
        return (facts.author or "").lstrip("@").lower() == f.value
    if name == "type":
        return facts.kind == f.value
    if name == "lang":
        return facts.lang is not None and (facts.lang.lower() == f.value or facts.lang.lower().startswith(f.value + "-"))
    if name in NUMERIC_FIELDS:
        actual = facts.rating if name == "rating" else facts.reach
        return actual is not None and COMPARE[f.op](actual, int(f.value))
    raise ValueError(f"unknown field {name}")  # pragma: no cover - the grammar admits only FIELDS


# --- three-valued evaluation -----------------------------------------------------------------------

Spans = list[tuple[int, int]]


def evaluate(node: Node, spans: Callable[[Term], Spans], facts: Facts,
             word_at: Callable[[int], int] | None = None) -> Node:
    """`node` with everything known decided: TRUE, FALSE, or the residual (unknown fields only)."""
    if isinstance(node, Term):
        return TRUE if spans(node) else FALSE
    if isinstance(node, Field):
        value = field_value(node, facts)
        return node if value is None else Const(value)
    if isinstance(node, Const):
        return node
    if isinstance(node, Not):
        inner = evaluate(node.item, spans, facts, word_at)
        return Const(not inner.value) if isinstance(inner, Const) else Not(inner)
    if isinstance(node, Near):
        return TRUE if near_spans(node, spans, word_at) else FALSE
    is_and = isinstance(node, And)
    rest = []
    for item in node.items:
        value = evaluate(item, spans, facts, word_at)
        if isinstance(value, Const):
            if value.value != is_and:
                return value  # FALSE in an AND, TRUE in an OR
            continue
        rest.append(value)
    if not rest:
        return Const(is_and)
    return rest[0] if len(rest) == 1 else type(node)(tuple(rest))


def near_spans(node: Node, spans: Callable[[Term], Spans], word_at: Callable[[int], int] | None) -> Spans:
    """Where a NEAR operand occurs: term spans, unions for OR, joined spans for a NEAR."""
    if isinstance(node, Term):
        return spans(node)
    if isinstance(node, Or):
        return sorted(s for item in node.items for s in near_spans(item, spans, word_at))
    left, right = near_spans(node.left, spans, word_at), near_spans(node.right, spans, word_at)
    out = []
    for a in left:
        for b in right:
            first, second = (a, b) if node.ordered or a[0] <= b[0] else (b, a)
            # at most `distance` words between them
            ok = second[0] > first[1] and word_at(second[0]) - word_at(first[1]) - 1 <= node.distance
            if ok:
                out.append((min(a[0], b[0]), max(a[1], b[1])))
    return out


def true_terms(node: Node, spans: Callable[[Term], Spans]) -> list[Term]:
    """The positive terms that occur (what made the clause hold)."""
    return [t for t, negated in terms_in(node) if not negated and spans(t)]


# --- after labelling -------------------------------------------------------------------------------

def kept_after_labels(mention, labels):
    """The stored mention with only the brands whose query still holds now that it is labelled (the
    `after_labels` residuals its poll stored in `extra`); the mention itself when nothing was pending."""
    pending = (mention.extra or {}).get("after_labels")
    if not pending:
        return mention
    facts = with_labels(Facts(post_known=True, lang=(mention.extra or {}).get("lang"), reach=mention.reach), labels)
    kept = {brand: terms for brand, terms in mention.matched.items()
            if brand not in pending or _still_holds(pending[brand], facts)}
    return mention if kept == mention.matched else replace(mention, matched=kept)


def _still_holds(residual: str, facts: Facts) -> bool:
    """A stored residual against the labels; one that no longer parses keeps the mention (better an
    alert too many than a complaint nobody sees)."""
    try:
        return evaluate(parse(residual), lambda term: [], facts) != FALSE
    except QueryError:
        return True
