"""Checks on configured queries for `validate`: queries that can never match or match every post,
the config validator, and where in the config file a query's mistake is."""

from __future__ import annotations

from itertools import product
from typing import Mapping

from monitor.query.brands import customised
from monitor.query.evaluate import COMPARE, anchors
from monitor.query.syntax import NUMERIC_FIELDS, And, Const, Field, Near, Node, Not, Or, QueryError, Term, parse, \
    terms_in, unparse
from monitor.query.translate import Search, platform_search

# --- never or always ------------------------------------------------------------------------------

MAX_ATOMS = 10


def _atoms(node: Node) -> list:
    if isinstance(node, (Term, Field)):
        return [node]
    if isinstance(node, Near):
        return [node]
    if isinstance(node, Not):
        return _atoms(node.item)
    if isinstance(node, (And, Or)):
        return [a for i in node.items for a in _atoms(i)]
    return []


def _consistent(true_fields: list[Field], false_fields: list[Field]) -> bool:
    """Whether one post could make these fields true and those false (one value per single-valued field)."""
    single = {}
    for f in true_fields:
        if f.name in NUMERIC_FIELDS:
            continue
        if f.name in ("url", "domain"):
            continue
        if f.name in single and single[f.name] != f.value:
            return False
        single[f.name] = f.value
    for name in NUMERIC_FIELDS:
        wanted = [f for f in true_fields if f.name == name]
        unwanted = [f for f in false_fields if f.name == name]
        if wanted or unwanted:
            if not any(all(COMPARE[f.op](v, int(f.value)) for f in wanted)
                       and not any(COMPARE[f.op](v, int(f.value)) for f in unwanted)
                       for v in range(0, max([int(f.value) for f in wanted + unwanted] + [5]) + 2)):
                return False
    return not any(f.name in single and single[f.name] == f.value for f in false_fields if f.name not in NUMERIC_FIELDS)


def _truth(node: Node, world: dict) -> bool:
    if isinstance(node, (Term, Field)):
        return world[node]
    if isinstance(node, Near):
        return world[node]
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Not):
        return not _truth(node.item, world)
    values = (_truth(i, world) for i in node.items)
    return all(values) if isinstance(node, And) else any(values)


def never_or_always(node: Node) -> str | None:
    """'never' when no post can satisfy the query, 'always' when every post does, else None (checked
    over every consistent truth assignment of its terms and fields; large queries are not checked)."""
    atoms = list(dict.fromkeys(_atoms(node)))
    if len(atoms) > MAX_ATOMS or not any(isinstance(a, Field) for a in atoms) and "NOT " not in unparse(node):
        return None  # too large to check, or monotone in its terms: some post matches, and not every one
    seen_true = seen_false = False
    for values in product((False, True), repeat=len(atoms)):
        world = dict(zip(atoms, values))
        if any(world[a] and not all(world.get(t, True) for t, _ in terms_in(a)) for a in atoms if isinstance(a, Near)):
            continue  # a NEAR holds only where its terms occur
        fields = [a for a in atoms if isinstance(a, Field)]
        if not _consistent([f for f in fields if world[f]], [f for f in fields if not world[f]]):
            continue
        if _truth(node, world):
            seen_true = True
        else:
            seen_false = True
        if seen_true and seen_false:
            return None
    return "never" if not seen_true else "always" if not seen_false else None


# --- the config file -------------------------------------------------------------------------------

def valid_query(text: str | None) -> str | None:
    """A config validator: the query parses (QueryError, a ValueError, says where it does not)."""
    if text is not None:
        parse(text)
    return text


def query_problem_at(error: QueryError, scalar: tuple[int, int, str | None] | None,
                     text: str) -> tuple[int, int | None, str | None]:
    """Where in the config file a query's error is (line, column) and that line with a caret under it.
    `scalar` is the YAML value's start and style: plain or quoted on one line, or a block (| or >)."""
    if scalar is None:
        return 1, None, None
    line, column, style = scalar
    lines = text.splitlines()
    if style in ("|", ">"):
        if line + error.line - 1 >= len(lines):
            return line, None, None
        first = lines[line]  # the block's first line sets its indentation
        line += error.line
        column = len(first) - len(first.lstrip(" ")) + error.column
    elif error.line == 1:
        column += error.column - 1 + (1 if style in ("'", '"') else 0)
    else:
        return line, None, None
    body = lines[line - 1] if line - 1 < len(lines) else ""
    return line, column, f"    {body}\n    {' ' * (column - 1)}^"


def query_warnings(settings, searches: Mapping[str, Search] | None = None) -> list[tuple[tuple, str, str]]:
    """Queries and filters that can never match, or match every post: (key path, query, why); and
    sources whose platform search (`searches`: platform type -> its translation) cannot express them."""
    searches = searches or {}
    out = []
    places = [(("brands", bid, "query"), b.query) for bid, b in settings.brands.items() if b.query]
    places += [(("brands", bid, "sources", i, "filter"), s.filter) for bid, b in settings.brands.items()
               for i, s in enumerate(b.sources) if s.filter]
    for bid, b in settings.brands.items():
        for i, s in enumerate(b.sources):
            verbatim = getattr(s, "query", None) or getattr(s, "queries", None)
            if s.type in searches and getattr(s, "what", "search") == "search" and getattr(s, "search", True) \
                    and not verbatim and customised(b, s) and platform_search(searches[s.type], b, s) is None:
                out.append((("brands", bid, "sources", i), s.name,
                            f"{s.type} search cannot express this brand's query and filter (nothing it can "
                            "search for, or over 512 characters): it searches for the brand's names and "
                            "aliases instead and the query is applied locally; set the source's query: to "
                            "search for less"))
    for path, text in places:
        verdict = never_or_always(parse(text))
        if verdict == "never":
            out.append((path, repr(text), "this query can never match: no post can satisfy it"))
        elif verdict == "always":
            out.append((path, repr(text), "this query matches every post (it names nothing a post must "
                        "contain): every post of every source would be a mention"))
        elif path[-1] == "query" and anchors(parse(text), lambda t: [t.text]) is None:
            out.append((path, repr(text), "this query can hold without any of its words in the post: every "
                        "post of every source is checked against it and may become this brand's mention; "
                        "AND it with the brand's names"))
    return out
