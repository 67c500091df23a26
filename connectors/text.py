"""Platform text as plain text: HTML markup (feed entries, Hacker News comments) reduced to its words."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("br", "p", "div", "li", "tr"):
            self.parts.append(" ")


def strip_html(markup: str) -> str:
    if "<" not in markup and "&" not in markup:
        return _SPACE.sub(" ", markup).strip()
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return _SPACE.sub(" ", "".join(parser.parts)).strip()
