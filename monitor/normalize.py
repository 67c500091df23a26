"""Text as a person reads it, so the matcher sees a brand name however it was typed or mangled.

One pipeline for the text of posts and for configured terms (they must fold alike): HTML entities
unescaped (`prepare`), invisible characters dropped (soft hyphens, zero-width spaces and joiners,
bidi marks), a word hyphenated across a line break joined, NFKC, Unicode confusables (Cyrillic or
Greek look-alike letters) folded to their Latin prototype with the Unicode table the
`confusable-homoglyphs` package ships, casefolded, accents dropped (per brand), whitespace folded and
`acme[.]io` defanged. Plain ASCII text, the bulk of what connectors find, takes a short path.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import confusable_homoglyphs

_SPACE = re.compile(r"\s+")
_DEFANGED_DOT = re.compile(r"\s*(?:[\[(]\s*)+(?:\.|dot)(?:\s*[\])])+\s*")
# Format characters a reader never sees: they split a name without showing it.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e"
                                    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061"
                                    "\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u3164\ufe00\ufe01\ufe02\ufe03"
                                    "\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f"
                                    "\ufeff\uffa0"))
# `Ac-\nme`: a word hyphenated at a line end is one word.
_HYPHEN_BREAK = re.compile(r"(?<=\w)[-\u2010\u2011]\s*[\n\r\u2028\u2029]\s*(?=\w)")
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


@lru_cache(maxsize=2)
def confusables_table(lower: bool = False) -> dict[int, str]:
    """Non-ASCII letters and digits that look like one ASCII letter or digit (Unicode's confusables.txt
    as shipped by `confusable-homoglyphs`). Letters with accents are left to accent folding, which a
    brand can switch off."""
    data = json.loads((Path(confusable_homoglyphs.__file__).parent / "confusables.json").read_text("utf-8"))
    table: dict[int, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or char.isascii() or unicodedata.decomposition(char):
            continue
        for entry in entries:
            target = entry.get("c", "")
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[ord(char)] = target.lower() if lower else target
                break
    return table


def prepare(text: str) -> str:
    """What enters the matcher: HTML entities unescaped (`Salt &amp; Pine`). Kept apart from `normalise`,
    which must be idempotent, and unescaping `&amp;amp;` twice is not."""
    return html.unescape(text) if "&" in text else text


def normalise(text: str, *, fold_accents: bool = True, keep_case: bool = False) -> str:
    """The folded form the matcher compares (idempotent): see the module docstring for the steps."""
    if text.isascii():
        if "\n" in text or "\r" in text:
            text = _HYPHEN_BREAK.sub("", text)
        if "[" in text or "(" in text:
            text = _DEFANGED_DOT.sub(".", text if keep_case else text.lower())
        elif not keep_case:
            text = text.lower()
        return " ".join(text.split())
    text = _HYPHEN_BREAK.sub("", text.translate(_INVISIBLE))
    text = unicodedata.normalize("NFKC", text)
    if not keep_case:
        text = unicodedata.normalize("NFKC", text.casefold())
    if fold_accents:
        text = unicodedata.normalize("NFC", _MARKS.sub("", unicodedata.normalize("NFD", text)))
    text = text.translate(confusables_table(lower=not keep_case))
    text = _DEFANGED_DOT.sub(".", text)
    return _SPACE.sub(" ", text).strip()


def is_cjk(ch: str) -> bool:
    """Scripts written without spaces between words: a Latin name touching them is still a word."""
    code = ord(ch)
    return (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF
            or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF or 0xFF66 <= code <= 0xFF9F
            or 0x20000 <= code <= 0x3134F)
