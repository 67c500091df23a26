"""The query language's syntax: grammar, parser with positioned errors, and the syntax tree.

A query is what monitors have converged on (Boolean operators, phrases, proximity, fields); see the
README's "Queries" section. It is parsed with lark (LALR, so a mistake is reported with the tokens
that were expected there) and checked (prefix wildcards need 3 letters, NEAR joins terms). `unparse`
turns a tree back into query text, for explanations and stored residuals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterable, Union

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
