"""The config file as strict, frozen pydantic models, and the checks behind `mentionwatch validate`.

Unknown keys are errors (a typo must never silently disable a watchlist). Every problem is
reported at once, each as `file:line: key.path: bad value: what is expected`.

Where things are: the brand model (terms, team accounts, the `Source` union of every platform's
source model) in `brand.py`; the route tree in `routes.py`; the `receivers:` blocks (typed by the receiver
plug-ins, `alerts/receivers/`) in `receivers.py`; `Settings` (with one section per platform that has shared settings) in `settings.py`;
loading and warnings in `load.py`. Each platform's own
models live with its connector (`connectors/<platform>`), declared in its registry entry; the types
they are built from are `monitor.configbase`.
"""

from __future__ import annotations

from monitor.config.brand import (WEEKDAYS, Brand, DigestConfig, Intent, Sentiment, Source, SpikeConfig,
                                  TeamAccounts, WeeklyHours)
from monitor.config.load import EX_CONFIG, ConfigError, channel_settings, load_settings, route_problems
from monitor.config.routes import Route, RouteMatch
from monitor.config.settings import SOURCE_TYPES, SlackConfig, Settings
from monitor.configbase import ConfigProblem, channel_name, parse_duration

__all__ = ["WEEKDAYS", "Brand", "DigestConfig", "Intent", "Sentiment", "Source", "SpikeConfig", "TeamAccounts",
           "WeeklyHours", "EX_CONFIG", "ConfigError", "channel_settings", "load_settings", "route_problems", "Route",
           "RouteMatch", "SOURCE_TYPES", "SlackConfig", "Settings", "ConfigProblem", "channel_name", "parse_duration"]
