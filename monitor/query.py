"""The query language: grammar, parser, syntax tree, three-valued evaluation and platform translation.

A query is what monitors have converged on (Boolean operators, phrases, proximity, fields); see the
README's "Queries" section. It is parsed with lark (LALR, so a mistake is reported with the tokens
that were expected there), checked (prefix wildcards need 3 letters, NEAR joins terms), and then:

- its terms go into the matcher's single Aho-Corasick automaton (monitor/matcher.py), with the
  terms one of which must occur for the query to hold (`anchors`), so one pass over a post finds the
  few brands worth evaluating;
- it is evaluated with three values: a field nobody knows yet (labels before labelling, a field of
  a bare text) is unknown, and `residual` keeps what is left to decide later, as query text;
- it is translated into X's, Reddit's and Hacker News's search syntax as far as each can express
  it, always broader than the query itself (a platform never filters out what the query keeps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import product
from typing import Callable, Iterable, Union
from urllib.parse import urlsplit

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from monitor.normalize import normalise

POST_FIELDS = ("site", "source", "sub", "author", "type", "title", "lang", "url", "domain", "rating")
LABEL_FIELDS = ("intent", "sentiment", "needs_reply")
NUMERIC_FIELDS = ("rating", "reach")
FIELDS = POST_FIELDS + LABEL_FIELDS + ("reach",)
TYPES = ("post", "comment", "review")
INTENTS = ("complaint", "question", "praise", "suggestion", "other")
SENTIMENTS = ("negative", "neutral", "positive")

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: not_expr (AND? not_expr)*
?not_expr: NOT not_expr -> not_
         | near_expr
?near_expr: primary (NEAR primary)*
?primary: LPAR or_expr RPAR -> group
        | FIELD COMPARE? value -> field
        | PHRASE -> phrase
        | CASED -> cased
        | WORD -> word
?value: WORD | PHRASE
OR: "OR"
AND: "AND"
NOT: "NOT"
NEAR.2: /O?NEAR\/[0-9]+/
FIELD.3: /(site|source|sub|author|type|title|lang|url|domain|rating|intent|sentiment|needs_reply|reach):/
COMPARE: "<=" | ">=" | "<" | ">" | "="
LPAR: "("
RPAR: ")"
PHRASE: /"[^"]*"/
CASED: /\{[^{}]*\}/
WORD: /[^\s()"{}<>=]+/
%ignore /\s+/
"""

TOKEN_NAMES = {"OR": "OR", "AND": "AND", "NOT": "NOT", "NEAR": "NEAR/n", "FIELD": "a field such as site:",
               "COMPARE": "<=, >=, <, > or =", "LPAR": "(", "RPAR": ")", "PHRASE": 'a "phrase"',
               "CASED": "a {Case-sensitive} term", "WORD": "a word", "$END": "the end of the query"}


class QueryError(ValueError):
    """A query that cannot be parsed: where (1-based line and column within the query) and what was expected."""

    def __init__(self, message: str, query: str, line: int, column: int):
        self.query, self.line, self.column, self.reason = query, line, column, message
        super().__init__(f"{message} (query line {line}, column {column})")

    def caret(self, indent: str = "    ") -> str:
        """The query's offending line with a caret under the problem."""
        text = self.query.splitlines()[self.line - 1] if self.query.splitlines() else ""
        return f"{indent}{text}\n{indent}{' ' * (self.column - 1)}^"


# --- the syntax tree ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """A word, "phrase", {Cased} term, @handle, #hashtag, domain or prefix* to find in the text."""

    kind: str      # word, prefix, handle, hashtag, domain
    text: str      # as written (without quotes or braces), for display
    case: bool = False
    title: bool = False  # title:… : only in the post's title
    bare_handle: bool = False  # a handle also matched without its @ (it holds _ or a digit)


@dataclass(frozen=True)
class Field:
    name: str
    op: str        # "=" or a comparison for rating and reach
    value: str


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: object


@dataclass(frozen=True)
class Near:
    left: object
    right: object
    distance: int
    ordered: bool


@dataclass(frozen=True)
class Const:
    value: bool


Node = Union[Term, Field, And, Or, Not, Near, Const]
TRUE, FALSE = Const(True), Const(False)
_DOMAIN = re.compile(r"^(?:https?://)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)/?$", re.I)
_UNKNOWN_FIELD = re.compile(r"^([A-Za-z_]+):(?!//)")


def term_of(text: str, kind: str | None = None, *, case: bool = False) -> Term:
    """A configured name, alias, handle, hashtag or domain (or a query word) as a Term."""
    if kind is None:
        if text.endswith("*"):
            kind = "prefix"
        elif text.startswith("@") and len(text) > 1:
            kind = "handle"
        elif text.startswith("#") and len(text) > 1:
            kind = "hashtag"
        elif _DOMAIN.match(text) and not text.replace(".", "").isdigit():
            kind = "domain"
        else:
            kind = "word"
    if kind == "prefix":
        text = text[:-1]
    if kind == "domain":
        text = _DOMAIN.match(text).group(1).lower() if _DOMAIN.match(text) else text
    bare = kind == "handle" and bool(re.search(r"[_0-9]", text[1:]))
    return Term(kind, text, case=case, bare_handle=bare)


class _Build(Transformer):
    def __init__(self, query: str):
        super().__init__()
        self.query = query

    def _fail(self, token: Token, message: str):
        raise QueryError(message, self.query, token.line, token.column)

    def or_expr(self, items):
        return Or(tuple(i for i in items if not isinstance(i, Token)))

    def and_expr(self, items):
        return And(tuple(i for i in items if not isinstance(i, Token)))

    def not_(self, items):
        return Not(items[1])

    def near_expr(self, items):
        node = items[0]
        for op, right in zip(items[1::2], items[2::2]):
            for side in (node, right):
                if not _near_operand(side):
                    self._fail(op, f"{op} joins terms, \"phrases\" or (a OR b) groups of them")
            node = Near(node, right, int(op.split("/")[1]), op.startswith("O"))
        return node

    def group(self, items):
        return items[1]

    def phrase(self, items):
        token = items[0]
        text = token[1:-1].strip()
        if not normalise(text):
            self._fail(token, 'an empty "phrase"')
        return Term("word", text)

    def cased(self, items):
        token = items[0]
        text = token[1:-1].strip()
        if not normalise(text) or "*" in text:
            self._fail(token, "a {Case-sensitive} term needs a word or phrase inside the braces (no *)")
        return Term("word", text, case=True)

    def word(self, items):
        token = items[0]
        unknown = _UNKNOWN_FIELD.match(token)
        if unknown:
            self._fail(token, f"unknown field {unknown.group(1)}: (fields: {', '.join(f + ':' for f in FIELDS)})")
        if token.startswith("-") and len(token) > 1:  # Lucene's -word
            return Not(self.word([Token("WORD", token[1:], line=token.line, column=token.column + 1)]))
        if not normalise(token.rstrip("*")):
            self._fail(token, "a term with nothing visible in it")
        if "*" in token[:-1] or (token.endswith("*") and len(re.sub(r"\W", "", token[:-1])) < 3):
            self._fail(token, "a prefix wildcard needs at least 3 letters before a final * (acm*)")
        return term_of(str(token))

    def field(self, items):
        name_token, value_token = items[0], items[-1]
        name = name_token[:-1]
        op = str(items[1]) if len(items) == 3 else "="
        value = str(value_token)
        if value.startswith('"'):
            value = value[1:-1].strip()
        if name in NUMERIC_FIELDS:
            if not value.isdigit():
                self._fail(value_token, f"{name}: takes a number, e.g. {name}:<=2 or {name}:>=100")
            return Field(name, op, value)
        if op != "=":
            self._fail(items[1], f"{name}: takes a value, not a comparison")
        if name == "title":
            return replace(term_of(value) if not items[-1].startswith('"') else Term("word", value), title=True)
        choices = {"type": TYPES, "intent": INTENTS, "sentiment": SENTIMENTS, "needs_reply": ("true", "false")}
        if name in choices and value.lower() not in choices[name]:
            self._fail(value_token, f"{name}: is one of {', '.join(choices[name])}")
        if name in ("site", "url", "domain"):
            value = value.lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        return Field(name, "=", value.lower() if name != "author" else value.lstrip("@").removeprefix("u/").lower())


def _near_operand(node) -> bool:
    if isinstance(node, Term):
        return not node.title
    if isinstance(node, (Or, Near)):
        return all(_near_operand(i) for i in (node.items if isinstance(node, Or) else (node.left, node.right)))
    return False


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


def _expected(names: Iterable[str]) -> str:
    shown = sorted({TOKEN_NAMES.get(n, n) for n in names if not n.startswith("__")})
    return ", ".join(shown) if shown else "something else"


@lru_cache(maxsize=4096)
def parse(query: str) -> Node:
    """The query's syntax tree; raises QueryError with the position and what was expected."""
    if not query.strip():
        raise QueryError("an empty query: expected a term, a \"phrase\" or a field", query, 1, 1)
    try:
        tree = _parser().parse(query)
        return _Build(query).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    except UnexpectedCharacters as exc:
        bad = query[exc.pos_in_stream] if exc.pos_in_stream is not None else "?"
        raise QueryError(f"unexpected {bad!r}: expected {_expected(exc.allowed or ())}", query, exc.line,
                         exc.column) from None
    except UnexpectedEOF as exc:
        line, column = _end(query)
        raise QueryError(f"the query ends too early: expected {_expected(exc.expected)}", query, line,
                         column) from None
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            line, column = _end(query)
            raise QueryError(f"the query ends too early: expected {_expected(exc.expected)}", query, line,
                             column) from None
        raise QueryError(f"unexpected {str(exc.token)!r}: expected {_expected(exc.expected)}", query,
                         exc.line, exc.column) from None
    except UnexpectedInput as exc:  # pragma: no cover - the three above are every lark parse error
        raise QueryError(str(exc).splitlines()[0], query, getattr(exc, "line", 1), getattr(exc, "column", 1)) from None


def _end(query: str) -> tuple[int, int]:
    lines = query.rstrip().splitlines() or [""]
    return len(lines), len(lines[-1]) + 1


def unparse(node: Node) -> str:
    """The query text of a tree (for explanations and stored residuals); parses back to the same tree."""
    if isinstance(node, Const):
        return "TRUE" if node.value else "FALSE"
    if isinstance(node, Term):
        body = {"prefix": node.text + "*"}.get(node.kind, node.text)
        if node.case:
            body = "{" + node.text + "}"
        elif node.kind == "word" and not re.fullmatch(r"[^\s()\"{}<>=:*]+", node.text):
            body = f'"{node.text}"'
        return f"title:{body}" if node.title else body
    if isinstance(node, Field):
        value = node.value if re.fullmatch(r"[^\s()\"{}<>=]+", node.value) else f'"{node.value}"'
        return f"{node.name}:{'' if node.op == '=' else node.op}{value}"
    if isinstance(node, Not):
        return "NOT " + _wrapped(node.item)
    if isinstance(node, Near):
        return f"{_wrapped(node.left)} {'ONEAR' if node.ordered else 'NEAR'}/{node.distance} {_wrapped(node.right)}"
    joiner = " AND " if isinstance(node, And) else " OR "
    return joiner.join(_wrapped(i) for i in node.items)


def _wrapped(node: Node) -> str:
    text = unparse(node)
    return f"({text})" if isinstance(node, (And, Or, Near)) else text


def terms_in(node: Node, negated: bool = False) -> Iterable[tuple[Term, bool]]:
    """Every term with whether it sits under a NOT."""
    if isinstance(node, Term):
        yield node, negated
    elif isinstance(node, (And, Or)):
        for item in node.items:
            yield from terms_in(item, negated)
    elif isinstance(node, Not):
        yield from terms_in(node.item, not negated)
    elif isinstance(node, Near):
        yield from terms_in(node.left, negated)
        yield from terms_in(node.right, negated)


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
    kind = "review" if post.source == "app_store" else _KIND.get(extra.get("kind"))
    if kind is None:
        kind = "comment" if post.source == "x" and post.parent_id else "post"
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


_COMPARE = {"=": int.__eq__, "<=": int.__le__, ">=": int.__ge__, "<": int.__lt__, ">": int.__gt__}


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
        return actual is not None and _COMPARE[f.op](actual, int(f.value))
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


# --- analysis for `validate` -----------------------------------------------------------------------

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
            if not any(all(_COMPARE[f.op](v, int(f.value)) for f in wanted)
                       and not any(_COMPARE[f.op](v, int(f.value)) for f in unwanted)
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


# --- translation into platforms' search syntax ------------------------------------------------------

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


# --- config: brands and sources as queries, and where a bad query is in the file -------------------

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


def _customised(brand, source) -> bool:
    """Whether the platform's default search from names and aliases would not express this brand."""
    return bool(brand.query or getattr(source, "filter", None))


def platform_search(platform: str, brand, source, limit: int = 512) -> str | list[str] | None:
    """The search to run on `platform` for a brand's query and its source's filter (X, Reddit: a query
    string; hackernews: a list of queries), or None to keep the connector's default search (nothing
    customised, or the platform cannot narrow the query, or it would be longer than `limit`)."""
    if not _customised(brand, source):
        return None
    node = effective(brand, source)
    if platform == "hackernews":
        return to_hackernews(node)
    text = to_x(node) if platform == "x" else to_reddit(node)
    return text if text and len(text) <= limit else None


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


def query_warnings(settings) -> list[tuple[tuple, str, str]]:
    """Queries and filters that can never match, or match every post: (key path, query, why)."""
    out = []
    places = [(("brands", bid, "query"), b.query) for bid, b in settings.brands.items() if b.query]
    places += [(("brands", bid, "sources", i, "filter"), s.filter) for bid, b in settings.brands.items()
               for i, s in enumerate(b.sources) if s.filter]
    for bid, b in settings.brands.items():
        for i, s in enumerate(b.sources):
            verbatim = getattr(s, "query", None) or getattr(s, "queries", None)
            if s.type in ("x", "reddit") and getattr(s, "what", "search") == "search" and getattr(s, "search", True) \
                    and not verbatim and _customised(b, s) and platform_search(s.type, b, s) is None:
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
