"""Decide which brands a post is about, for every brand at once, in one pass over the text.

Each brand is a query (monitor/query/): its `query:`, or its names, aliases, handles, hashtags and
domains ORed, with its exclusion phrases ANDed NOT. Every term of every query lives in one
Aho-Corasick automaton over normalised text (monitor/normalize.py); a query is evaluated only for
posts where one of its anchor terms occurs (plus the few queries that can hold without any), so the
cost per post barely grows with the number of brands. Terms match whole words only (`eth` never
inside `something`), with plural `s`/`es` and possessives; a Latin name touching CJK text is a
word; domains match their subdomains, never a host that merely starts with them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import ahocorasick

from monitor import query as q
from monitor.core.records import Match
from monitor.normalize import is_cjk, normalise as _normalise, prepare

_NOT_CJK_WORD = r"[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
_WORDS = re.compile(r"\w+")
_NOTHING_KNOWN = q.Facts()


def normalise(text: str) -> str:
    """The folded form terms and texts are compared in (NFKC, casefold, accents, confusables, defanged)."""
    return _normalise(text)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _boundary(ch: str, edge: str) -> bool:
    """`ch` next to a term whose first/last character is `edge` ends the word there. Chinese, Japanese
    and Korean text has no spaces between words: next to it, or inside it, any character is a boundary."""
    return not _is_word(ch) or is_cjk(ch) or is_cjk(edge)


def _continues_host(norm: str, end: int) -> bool:
    """`acme.io` must not match inside `acme.io.evil.com` or `acme.io-mirror.net` (nor `not-acme.io`)."""
    return end + 2 < len(norm) and norm[end + 1] in ".-" and _is_word(norm[end + 2])


def _plural_end(norm: str, end: int, key: str) -> int | None:
    """Where a word term ends here: itself, or with a plural `s`/`es`; None inside a longer word."""
    n = len(norm)
    suffixes = ("", "s", "es") if key[-1] in "sxzh" else ("", "s")
    for suffix in suffixes:
        stop = end + len(suffix)
        if suffix and norm[end + 1:stop + 1] != suffix:
            continue
        if stop + 1 >= n or _boundary(norm[stop + 1], key[-1]):
            return stop
    return None


def _span(kind: str, norm: str, start: int, end: int, key: str) -> tuple[int, int] | None:
    """The span a hit of `key` at [start, end] covers for a term of `kind`, or None when it is not one."""
    before = norm[start - 1] if start > 0 else ""
    if kind in ("handle", "hashtag"):
        if before and (_is_word(before) or before in "@#"):
            return None
        after = norm[end + 1] if end + 1 < len(norm) else ""
        return (start, end) if not after or not _is_word(after) else None
    if kind == "domain":
        if before and (_is_word(before) or before == "-"):
            return None
        after = norm[end + 1] if end + 1 < len(norm) else ""
        if (after and _is_word(after)) or _continues_host(norm, end):
            return None
        return start, end
    if before and not _boundary(before, key[0]):
        return None
    if kind == "bare":
        if before == "@" or (end + 1 < len(norm) and _is_word(norm[end + 1])):
            return None
        return start, end
    if kind == "prefix":
        stop = end
        while stop + 1 < len(norm) and _is_word(norm[stop + 1]) and not is_cjk(norm[stop + 1]):
            stop += 1
        return start, stop
    stop = _plural_end(norm, end, key)
    return None if stop is None else (start, stop)


@dataclass
class _Brand:
    id: str
    include: q.Node
    exclude: tuple[q.Term, ...]
    fold_accents: bool
    display: dict[q.Term, str]


@dataclass
class Verdict:
    """What `mentionwatch match` prints for one brand: matched (True, False, or None while it depends
    on fields still unknown), the clause and terms that made it, and what dropped it."""

    brand: str
    matched: bool | None
    clause: str | None = None
    terms: list[str] = field(default_factory=list)
    excluded_by: list[str] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    pending: str | None = None
    filtered_by: str | None = None


class Matcher:
    """Built once per config; `match()` is pure and thread-safe."""

    def __init__(self, brands: Mapping[str, Mapping[str, Any]], filters: Mapping[str, str] | None = None):
        """`brands` maps brand id -> {kind: terms} (kinds name, handle, hashtag, domain, exclude), plus
        optionally `query` (replacing the terms) and `fold_accents`; `filters` maps a source id to a
        query its posts must also satisfy."""
        self._brands: dict[str, _Brand] = {}
        self._keys: dict[str, int] = {}
        self._key_text: list[str] = []
        self._kinds: list[set[str]] = []
        self._by_anchor: dict[int, list[str]] = {}
        self._always: list[str] = []
        self._exact: dict[tuple[q.Term, bool], re.Pattern] = {}
        parsed = {brand_id: q.brand_node(kinds) for brand_id, kinds in brands.items()}
        shared: dict[str, int] = {}  # how many brands' queries use a key: common words gate nothing
        for include, _, _ in parsed.values():
            for key in {k for term, _ in q.terms_in(include) for k in self._anchor_keys(term)}:
                shared[key] = shared.get(key, 0) + 1
        for brand_id, kinds in brands.items():
            include, exclude, display = parsed[brand_id]
            if include == q.Or(()):
                continue
            fold = bool(kinds.get("fold_accents", True))
            for term, _ in list(q.terms_in(include)) + [(t, True) for t in exclude]:
                self._register(term, fold)
            anchor_keys = q.anchors(include, self._anchor_keys, lambda key: shared.get(key, 1))
            brand = _Brand(brand_id, include, exclude, fold, display)
            self._brands[brand_id] = brand
            if anchor_keys is None:
                self._always.append(brand_id)
            else:
                for key in anchor_keys:
                    self._by_anchor.setdefault(self._keys[key], []).append(brand_id)
        self._filters = {sid: q.parse(text) for sid, text in (filters or {}).items()}
        for node in self._filters.values():
            for term, _ in q.terms_in(node):
                self._register(term, True)
        self.term_count = len(self._keys)
        self._automaton = ahocorasick.Automaton()
        for key, key_id in self._keys.items():
            self._automaton.add_word(key, (key_id, len(key)))
        if self._keys:
            self._automaton.make_automaton()

    @staticmethod
    def _key_of(term: q.Term) -> str:
        return normalise(term.text)

    def _anchor_keys(self, term: q.Term) -> list[str]:
        return [self._key_of(term)] + ([normalise(term.text[1:])] if term.bare_handle else [])

    def _register(self, term: q.Term, fold: bool) -> None:
        keys = [(self._key_of(term), "word" if term.kind == "word" else term.kind)]
        if term.bare_handle:
            keys.append((normalise(term.text[1:]), "bare"))
        for key, kind in keys:
            if key not in self._keys:
                self._keys[key] = len(self._key_text)
                self._key_text.append(key)
                self._kinds.append(set())
            self._kinds[self._keys[key]].add(kind)
        exact = _normalise(term.text, fold_accents=fold, keep_case=term.case)
        if term.case or exact != keys[0][0]:  # {Cased}, or accents that count for this brand
            end = "" if term.kind == "prefix" else f"(?:e?s)?(?!{_NOT_CJK_WORD})"
            self._exact[(term, fold)] = re.compile(rf"(?<!{_NOT_CJK_WORD}){re.escape(exact)}{end}")

    @classmethod
    def from_settings(cls, settings) -> "Matcher":
        brands = {bid: q.brand_kinds(b) for bid, b in settings.brands.items()}
        filters = {sid: src.filter for sid, (_, src) in settings.sources().items() if getattr(src, "filter", None)}
        return cls(brands, filters)

    # --- one post ----------------------------------------------------------------------------------

    def _scan(self, text: str) -> "_Post":
        """The one Aho-Corasick pass: where every key of every query occurs in the normalised text
        (checked for word boundaries only when a term asks, so common context words cost little)."""
        prepared = prepare(text)
        norm = normalise(prepared)
        raw: dict[int, list[tuple[int, int]]] = {}
        if self._keys:
            for end, (key_id, length) in self._automaton.iter(norm):
                found = raw.get(key_id)
                if found is None:
                    raw[key_id] = [(end - length + 1, end)]
                else:
                    found.append((end - length + 1, end))
        return _Post(self, prepared, norm, raw)

    def _candidates(self, post: "_Post") -> list[str]:
        """The brands to evaluate: those with an anchor term in the post, and those without anchors."""
        found = None
        for key_id in post.raw:
            brands = self._by_anchor.get(key_id)
            if brands and any(post.hits(key_id, kind) for kind in self._kinds[key_id]):
                found = found or dict.fromkeys(self._always)
                found.update(dict.fromkeys(brands))
        return self._always if found is None else list(found)

    def match(self, text: str, facts: q.Facts | None = None,
              default_brand: str | None = None) -> tuple[Match | None, str | None]:
        """The brands this text is about, or None and the reason it was dropped (`no_match`, `excluded`,
        `filtered` by the source's filter). `facts` are the post's fields (default: none known);
        `default_brand` owns a post no brand matches (a source with `require_match: false`)."""
        facts = facts or _NOTHING_KNOWN
        source_filter = self._filters.get(facts.source_id) if facts.source_id else None
        if not self._brands and source_filter is None:
            return (Match({default_brand: []}), None) if default_brand else (None, "no_match")
        post = self._scan(text)
        residual_filter = q.TRUE
        if source_filter is not None:
            residual_filter = q.evaluate(source_filter, post.spans_for(True, facts), facts, post.word_at)
            if residual_filter == q.FALSE:
                return None, "filtered"
        pending_filter = {} if residual_filter == q.TRUE else {default_brand: q.unparse(residual_filter)}
        candidates = self._candidates(post)
        if not candidates:
            return (Match({default_brand: []}, after_labels=pending_filter), None) if default_brand \
                else (None, "no_match")
        hits: dict[str, list[str]] = {}
        pending: dict[str, str] = {}
        excluded = False
        for brand_id in candidates:
            brand = self._brands[brand_id]
            spans = post.spans_for(brand.fold_accents, facts)
            value = q.evaluate(brand.include, spans, facts, post.word_at)
            if value == q.FALSE:
                continue
            if any(spans(t) for t in brand.exclude):
                excluded = True
                continue
            hits[brand_id] = post.shown(brand, q.true_terms(brand.include, spans), spans)
            rest = [v for v in (value, residual_filter) if v != q.TRUE]
            if rest:
                pending[brand_id] = q.unparse(rest[0] if len(rest) == 1 else q.And(tuple(rest)))
        if not hits:
            if default_brand and not excluded:
                return Match({default_brand: []}, after_labels=pending_filter), None
            return None, "excluded" if excluded else "no_match"
        return Match(hits, after_labels=pending), None

    def explain(self, text: str, facts: q.Facts | None = None, brand: str | None = None) -> list[Verdict]:
        """Every brand's (or one brand's) verdict on this text, with the clause, terms and exclusions."""
        facts = facts or q.Facts()
        post = self._scan(text)
        filtered_by = None
        source_filter = self._filters.get(facts.source_id) if facts.source_id else None
        if source_filter is not None and q.evaluate(source_filter, post.spans_for(True, facts), facts,
                                                    post.word_at) == q.FALSE:
            filtered_by = q.unparse(source_filter)
        out = []
        for brand_id, b in self._brands.items():
            if brand is not None and brand_id != brand:
                continue
            spans = post.spans_for(b.fold_accents, facts)
            value = q.evaluate(b.include, spans, facts, post.word_at)
            verdict = Verdict(brand_id, value == q.TRUE if isinstance(value, q.Const) else None)
            clauses = b.include.items if isinstance(b.include, q.Or) else (b.include,)
            for clause in clauses:
                if q.evaluate(clause, spans, facts, post.word_at) != q.FALSE:
                    verdict.clause = q.unparse(clause)
                    break
            verdict.terms = post.shown(b, q.true_terms(b.include, spans), spans)
            verdict.negated = [b.display.get(t, q.unparse(t)) for t, neg in q.terms_in(b.include) if neg and spans(t)]
            verdict.excluded_by = [t.text for t in b.exclude if spans(t)]
            if not isinstance(value, q.Const):
                verdict.pending = q.unparse(value)
            if verdict.matched is not False and (verdict.excluded_by or filtered_by):
                verdict.matched, verdict.filtered_by = False, filtered_by
            out.append(verdict)
        return out


class _Post:
    """One post's scan: the spans of every key found, and lazily what only some terms need."""

    __slots__ = ("matcher", "prepared", "norm", "raw", "_hits", "_exact_text", "_starts", "_cache")

    def __init__(self, matcher: Matcher, prepared: str, norm: str, raw: dict):
        self.matcher, self.prepared, self.norm, self.raw = matcher, prepared, norm, raw
        self._hits: dict[tuple[int | None, str], list[tuple[int, int]]] = {}
        self._exact_text: dict[tuple[bool, bool], str] = {}
        self._starts: list[int] | None = None
        self._cache: dict[tuple[q.Term, bool], list] = {}

    def hits(self, key_id: int | None, kind: str) -> list[tuple[int, int]]:
        """Spans where the key occurs as a term of this kind (whole word, handle, domain, …)."""
        found = self._hits.get((key_id, kind))
        if found is None:
            key = self.matcher._key_text[key_id] if key_id is not None else ""
            found = [span for start, end in self.raw.get(key_id, ())
                     if (span := _span(kind, self.norm, start, end, key)) is not None]
            self._hits[(key_id, kind)] = found
        return found

    def word_at(self, offset: int) -> int:
        """The index of the word at a character offset (for NEAR/n)."""
        if self._starts is None:
            self._starts = [m.start() for m in _WORDS.finditer(self.norm)]
        return bisect_right(self._starts, offset)

    def _exact(self, fold: bool, case: bool) -> str:
        if (fold, case) not in self._exact_text:
            self._exact_text[(fold, case)] = _normalise(self.prepared, fold_accents=fold, keep_case=case)
        return self._exact_text[(fold, case)]

    def spans_for(self, fold: bool, facts: q.Facts):
        def spans(term: q.Term) -> list[tuple[int, int]]:
            cached = self._cache.get((term, fold))
            if cached is not None:
                return cached
            found = self._term_spans(term, fold, facts)
            self._cache[(term, fold)] = found
            return found
        return spans

    def _term_spans(self, term: q.Term, fold: bool, facts: q.Facts) -> list[tuple[int, int]]:
        m = self.matcher
        if term.title:
            title = _normalise(prepare(facts.title or ""), fold_accents=fold, keep_case=term.case)
            pattern = m._exact.get((term, fold)) or re.compile(
                rf"(?<!{_NOT_CJK_WORD}){re.escape(m._key_of(term))}(?:e?s)?(?!{_NOT_CJK_WORD})")
            return [(0, 0)] if pattern.search(title) else []
        key_id = m._keys.get(m._key_of(term))
        kind = "word" if term.kind == "word" else term.kind
        found = list(self.hits(key_id, kind))
        if term.bare_handle:
            found += self.hits(m._keys.get(normalise(term.text[1:])), "bare")
        if found and (term, fold) in m._exact:  # and in its exact form somewhere in the post
            if not m._exact[(term, fold)].search(self._exact(fold, term.case)):
                return []
        return sorted(found)

    def shown(self, brand: _Brand, terms: Iterable[q.Term], spans) -> list[str]:
        """The configured text of the terms that hit, in the order they occur in the post."""
        ordered = sorted(terms, key=lambda t: spans(t)[0] if spans(t) else (0, 0))
        return list(dict.fromkeys(brand.display.get(t, q.unparse(t)) for t in ordered))
