"""A configured brand and its sources as queries: its `query:`, or its names, aliases, handles,
hashtags and domains ORed, NOT its exclusions, AND a source's filter."""

from __future__ import annotations

from monitor.normalize import normalise
from monitor.query.syntax import And, Node, Not, Or, Term, parse, term_of


def brand_node(kinds: dict) -> tuple[Node, tuple[Term, ...], dict[Term, str]]:
    """A brand as a query: its `query`, or its names, aliases, handles, hashtags and domains ORed; its
    exclusion phrases; and each term's display."""
    display: dict[Term, str] = {}
    terms = []
    for kind, values in kinds.items():
        if kind in ("query", "exclude", "fold_accents"):
            continue
        for text in values:
            if not normalise(text):
                continue
            term = term_of(text, {"name": "word"}.get(kind, kind))
            display.setdefault(term, text)
            terms.append(term)
    include = parse(kinds["query"]) if kinds.get("query") else Or(tuple(dict.fromkeys(terms)))
    exclude = tuple(Term("word", t) for t in kinds.get("exclude", ()) if normalise(t))
    return include, exclude, display


def brand_kinds(brand) -> dict:
    """A config Brand in the form `brand_node` and the matcher take."""
    return {"name": brand.names + brand.aliases, "handle": brand.handles, "hashtag": brand.hashtags,
            "domain": brand.domains, "exclude": brand.exclude, "query": brand.query,
            "fold_accents": brand.fold_accents}


def effective(brand, source=None) -> Node:
    """What a source of this brand keeps: the brand's query, NOT its exclusions, AND the source's filter."""
    include, exclude, _ = brand_node(brand_kinds(brand))
    parts = [include] + [Not(t) for t in exclude]
    if source is not None and getattr(source, "filter", None):
        parts.append(parse(source.filter))
    return And(tuple(parts)) if len(parts) > 1 else include


def customised(brand, source) -> bool:
    """Whether the platform's default search from names and aliases would not express this brand."""
    return bool(brand.query or getattr(source, "filter", None))
