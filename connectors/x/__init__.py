"""X, as a plug-in: its config (config.py), its posts (posts.py), its connector (connector.py) and its
search syntax (search.py), registered under `type: x`."""

from __future__ import annotations

from typing import Any

from connectors.registry import Platform
from connectors.x.config import XPlatform, XSource, check_sources, reads_per_month
from connectors.x.connector import XConnector
from connectors.x.search import to_x
from monitor.configbase import ConfigProblem


def budget_warnings(settings: Any, loaded: Any, file: str) -> list[ConfigProblem]:
    """X bills each post read: an estimate above the plan's cap means the X sources pause mid-month."""
    if settings.x is None:
        return []
    need, cap = reads_per_month(settings), settings.x.monthly_read_cap
    if need <= cap:
        return []
    return [ConfigProblem(file, loaded.lines.get(("x", "monthly_read_cap"), loaded.lines.get(("x",), 1)),
                          "x.monthly_read_cap", f"{cap:,}",
                          f"the X sources are estimated to read about {need:,} posts a month (from each "
                          "source's expected_posts_per_day), more than this cap: they will pause until the "
                          "next month once it is spent; narrow the queries or raise the cap", warning=True)]


def account(name: str) -> str:
    return name if name.startswith("@") else "@" + name


PLUGIN = Platform(type="x", display="X", source=XSource, connector=XConnector, settings_key="x",
                  settings_model=XPlatform, settings_description="Required once a brand has a `type: x` source",
                  team="X handles of the team, with or without @", account=account, check=check_sources,
                  warnings=budget_warnings, order=50, search=to_x)
