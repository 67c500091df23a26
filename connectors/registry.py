"""The platforms mentionwatch reads, found at import time: every module (or package) of `connectors`
that declares a `PLUGIN = Platform(...)` is one. Config, alert texts and the pipeline read this
registry, so adding a platform is adding its module (plus demo data and docs)."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Callable, Mapping

from monitor.configbase import ConfigProblem, Owned, Strict


@dataclass(frozen=True)
class Platform:
    """One platform's registry entry.

    `type` is the `type:` of its source blocks and the `Post.source` of what it finds. `connector` is
    called as `connector(source, settings, store=store, clock=clock)`. `settings_key` names the
    top-level section of its shared settings (`settings_model`): with a default when every field has
    one, else optional (None until configured) and `check` says which sources need it. `position` says where a
    streaming source's cursor stands in time (`status`: cursor age and lag). `team` describes
    the `team:` list of the brand's accounts there, and `account` writes one as the platform does.
    `stop` ends the background readers a streaming platform shares across sources, so a daemon that
    stops does not go on reconnecting to a stream.
    `search` translates a brand's query into the platform's search (monitor.query.translate), for the
    platforms that search: `validate` warns when it cannot express a source's query."""

    type: str
    display: str                                   # in alert texts: "answered on Reddit", "on the web"
    source: type[Owned]
    connector: Callable[..., Any]
    settings_key: str | None = None
    settings_model: type[Strict] | None = None
    settings_description: str | None = None         # only for an optional section
    team: str | None = None
    account: Callable[[str], str] = str
    check: Callable[[Mapping[str, Any], Mapping[str, Any]], None] | None = None  # (brands, validated sections)
    warnings: Callable[[Any, Any, str], list[ConfigProblem]] | None = None   # (settings, loaded yaml, file)
    order: int = 100                               # position in the source union and in messages
    position: Callable[[Any, dict], datetime | None] | None = None  # (source, cursor): a stream's place in time
    search: Callable[[Any], Any] | None = None     # query node -> the platform's search (str, [str]) or None
    stop: Callable[[], None] | None = None          # stops the process's shared stream readers (shutdown)


@cache
def platforms() -> tuple[Platform, ...]:
    """Every registered platform, in their `order` (then by type)."""
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        module = importlib.import_module(f"{__package__}.{info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if isinstance(plugin, Platform):
            found.append(plugin)
    return tuple(sorted(found, key=lambda p: (p.order, p.type)))


def stop_readers() -> None:
    """Stop every platform's shared stream readers (the daemon's shutdown)."""
    for each in platforms():
        if each.stop is not None:
            each.stop()


def platform(source_type: str) -> Platform:
    return next(p for p in platforms() if p.type == source_type)


def display_names() -> dict[str, str]:
    """Platform type -> how alert texts name it."""
    return {p.type: p.display for p in platforms()}


def make_connector(source, settings, store=None, clock=None):
    """The connector of a configured source; `clock` (when given) is the one it reasons about time with."""
    extra = {} if clock is None else {"clock": clock}
    return platform(source.type).connector(source, settings, store=store, **extra)
