"""Reddit, as a plug-in: its config (config.py), its request budget (budget.py) and its connector
(connector.py), its search syntax (search.py), registered under `type: reddit`."""

from __future__ import annotations

from typing import Any

from connectors.reddit.config import RedditPlatform, RedditSource, check_credentials
from connectors.reddit.connector import RedditConnector, plan_listings
from connectors.reddit.search import to_reddit
from connectors.registry import Platform
from monitor.configbase import ConfigProblem


def requests_per_minute(settings: Any) -> float:
    """What the Reddit sources need when nothing is busy: one page per listing per poll."""
    total = 0.0
    for _, (brand_id, source) in settings.sources().items():
        if source.type == "reddit":
            listings = plan_listings(source, settings.brands[brand_id])
            total += len(listings) * 60.0 / source.interval.total_seconds()
    return total



def budget_warnings(settings: Any, loaded: Any, file: str) -> list[ConfigProblem]:
    """All Reddit sources share one app's budget: needing more than it allows makes every poll late."""
    if settings.reddit is None:
        return []
    need, budget = requests_per_minute(settings), settings.reddit.requests_per_minute
    if need <= budget:
        return []
    return [ConfigProblem(file, loaded.lines.get(("reddit",), 1), "reddit.requests_per_minute", str(budget),
                          f"the Reddit sources need about {need:.0f} requests a minute (one per subreddit or "
                          "query per poll), more than this budget: polls will run late; lengthen their "
                          "intervals or watch fewer subreddits", warning=True)]


def account(name: str) -> str:
    return name if name.startswith("u/") else "u/" + name


PLUGIN = Platform(type="reddit", display="Reddit", source=RedditSource, connector=RedditConnector,
                  settings_key="reddit", settings_model=RedditPlatform,
                  settings_description="Required once a brand has a `type: reddit` source",
                  team="Reddit usernames, without u/", account=account, check=check_credentials,
                  warnings=budget_warnings, order=40, search=to_reddit)
