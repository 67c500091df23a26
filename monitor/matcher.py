"""Decide which brands a post is about, for every brand at once, in one pass over the text.

All terms of all brands live in one Aho-Corasick automaton, so the cost per post barely grows
with the number of terms. Matching is on normalised text (NFKC, casefold, whitespace folded,
`acme[.]io` defanged) and on whole words only: `eth` never matches inside `something`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Mapping

import ahocorasick

from monitor.core.records import Match

_SPACE = re.compile(r"\s+")
_DEFANGED_DOT = re.compile(r"\s*(?:[\[(]\s*)+(?:\.|dot)(?:\s*[\])])+\s*")


def normalise(text: str) -> str:
    """NFKC, casefold, NFKC again (casefolding can undo NFKC), defang, fold whitespace."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    text = _DEFANGED_DOT.sub(".", text)
    return _SPACE.sub(" ", text).strip()


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _continues_host(norm: str, end: int) -> bool:
    """`acme.io` must not match inside `acme.io.evil.com` or `acme.io-mirror.net` (nor `not-acme.io`)."""
    return end + 2 < len(norm) and norm[end + 1] in ".-" and _is_word(norm[end + 2])


@dataclass(frozen=True)
class _Term:
    brand: str
    kind: str  # name, handle, hashtag, domain, exclude
    text: str  # as configured, for display


class Matcher:
    """Built once per config; `match()` is pure and thread-safe."""

    def __init__(self, brands: Mapping[str, Mapping[str, Iterable[str]]]):
        """`brands` maps brand id -> {kind: terms}; kind `exclude` lists exclusion phrases."""
        by_key: dict[str, list[_Term]] = {}
        for brand, kinds in brands.items():
            for kind, terms in kinds.items():
                for term in terms:
                    key = normalise(term)
                    if key:
                        by_key.setdefault(key, []).append(_Term(brand, kind, term))
        self.term_count = len(by_key)
        self._automaton = ahocorasick.Automaton()
        for key, terms in by_key.items():
            self._automaton.add_word(key, (len(key), tuple(terms)))
        if by_key:
            self._automaton.make_automaton()

    @classmethod
    def from_settings(cls, settings) -> "Matcher":
        return cls({bid: {**b.terms(), "exclude": b.exclude} for bid, b in settings.brands.items()})

    def match(self, text: str) -> tuple[Match | None, str | None]:
        """The brands this text is about, or None and the reason it was dropped."""
        if self.term_count == 0:
            return None, "no_match"
        norm = normalise(text)
        hits: dict[str, list[str]] = {}
        excluded: set[str] = set()
        for end, (length, terms) in self._automaton.iter(norm):
            start = end - length + 1
            if start > 0 and _is_word(norm[start - 1]):
                continue
            after = norm[end + 1] if end + 1 < len(norm) else ""
            if after and _is_word(after):
                continue
            for term in terms:
                if term.kind == "domain" and (_continues_host(norm, end) or (start > 0 and norm[start - 1] == "-")):
                    continue
                if term.kind == "exclude":
                    excluded.add(term.brand)
                elif term.text not in hits.get(term.brand, ()):
                    hits.setdefault(term.brand, []).append(term.text)
        if not hits:
            return None, "no_match"
        kept = {brand: terms for brand, terms in hits.items() if brand not in excluded}
        if not kept:
            return None, "excluded"
        return Match(kept), None
