"""The alert route tree (Alertmanager style): matchers, channels, grouping, quiet hours, escalation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from monitor.config.brand import Intent, Promise, Sentiment, WeeklyHours
from monitor.configbase import Channel, Duration, Strict


class RouteMatch(Strict):
    """Every key given must hold (lists mean any of); an empty match matches every mention."""

    brand: list[str] | None = None
    source: list[str] | None = Field(None, description="Source ids (brand/name) or types (reddit, x, feed, …)")
    sentiment: list[Sentiment] | None = None
    intent: list[Intent] | None = None
    needs_reply: bool | None = None
    reach_at_least: int | None = Field(None, ge=0, description="Score, points or followers")
    language: list[str] | None = None
    keywords: list[str] | None = Field(None, description="Any of these phrases in the text (case-insensitive)")


GroupLabel = Literal["brand", "source", "intent", "sentiment", "route", "mention"]


class Route(Strict):
    """A node of the route tree; unset settings are inherited from the parent (Alertmanager style)."""

    match: RouteMatch = RouteMatch()
    continue_: bool = Field(False, alias="continue")
    channel: Channel | None = Field(None, description="Default at the root: the brand's slack_channel")
    receiver: str | None = Field(None, description="A name under `receivers:`, or `slack` (the default at the "
                                 "root); inherited like channel")
    group_by: list[GroupLabel] | None = Field(None, description="Labels whose values split a route's mentions "
                                              "into messages (default: brand); `mention`: one message each")
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Promise | None = Field(None, description="Reminder cadence after the deadline (at least 1m)")
    quiet_hours: WeeklyHours | None = None
    urgent: bool | None = Field(None, description="Urgent alerts are sent during quiet hours")
    escalation_channel: Channel | None = None
    escalate_to: list[Annotated[str, Field(pattern=r"^[SUW][A-Z0-9]{2,}$")]] | None = Field(
        None, description="Slack user group (S…) or user (U…/W…) ids to ping")
    routes: list["Route"] = []


