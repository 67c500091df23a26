"""The alert route tree (Alertmanager style): matchers, channels, grouping, quiet hours, escalation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from monitor.config.brand import Intent, Promise, Sentiment, WeeklyHours
from monitor.configbase import Channel, Duration, Strict


class RouteMatch(Strict):
    """Every key given must hold (lists mean any of); an empty match matches every mention."""

    brand: list[str] | None = Field(None, description="Brand ids")
    source: list[str] | None = Field(None, description="Source ids (brand/name) or types (reddit, x, feed, …)")
    sentiment: list[Sentiment] | None = Field(None, description="Sentiments: positive, neutral, negative")
    intent: list[Intent] | None = Field(None, description="Intents: complaint, question, praise, suggestion, other")
    needs_reply: bool | None = Field(None, description="Whether the mention needs a reply")
    reach_at_least: int | None = Field(None, ge=0, description="Score, points or followers")
    language: list[str] | None = Field(None, description="Language codes (en, de, …) the text is detected in")
    keywords: list[str] | None = Field(None, description="Any of these phrases in the text (case-insensitive)")


GroupLabel = Literal["brand", "source", "intent", "sentiment", "route", "mention"]


class Route(Strict):
    """A node of the route tree; unset settings are inherited from the parent (Alertmanager style)."""

    match: RouteMatch = RouteMatch()
    continue_: bool = Field(False, alias="continue",
                            description="true: mentions this route takes also go on to the next matching sibling")
    channel: Channel | None = Field(None, description="Default at the root: the brand's slack_channel")
    receiver: str | None = Field(None, description="A name under `receivers:`, or `slack` (the default at the "
                                 "root); inherited like channel")
    group_by: list[GroupLabel] | None = Field(None, description="Labels whose values split a route's mentions "
                                              "into messages (default: brand); `mention`: one message each")
    group_wait: Duration | None = Field(None,
                                        description="A burst within this becomes one message (`run --once` does not wait)")
    group_interval: Duration | None = Field(None,
                                            description="Later mentions of a group that already sent wait at least this long")
    repeat_interval: Promise | None = Field(None, description="Reminder cadence after the deadline (at least 1m)")
    quiet_hours: WeeklyHours | None = None
    urgent: bool | None = Field(None, description="Urgent alerts are sent during quiet hours")
    escalation_channel: Channel | None = Field(None,
                                               description="At the deadline one message goes here linking to the alert (default: the alert's thread)")
    escalate_to: list[Annotated[str, Field(pattern=r"^[SUW][A-Z0-9]{2,}$")]] | None = Field(
        None, description="Slack user group (S…) or user (U…/W…) ids to ping")
    routes: list["Route"] = Field([],
                                  description="Child routes, each with a `match` and any key of this route; the first that matches takes a mention")


