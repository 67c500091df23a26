"""The route tree: which routes a mention takes, with every setting resolved (Alertmanager's `Route.Match`).

Matching walks the children depth-first; the first matching child wins unless it says
`continue: true`; a node none of whose children match handles the mention itself. Children inherit
every setting they leave unset; the root's channel defaults to the brand's `slack_channel`, its
receiver to `slack`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.core.labels import Labels
from monitor.config import Brand, Route, RouteMatch, WeeklyHours
from monitor.core.records import StoredMention

DEFAULT_GROUP_BY = ("brand",)
DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)


@dataclass(frozen=True)
class ResolvedRoute:
    """A route with its inherited settings filled in; `path` ("root", "root.0", "root.0.2") names it."""

    path: str
    channel: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    quiet_hours: WeeklyHours | None
    urgent: bool
    escalation_channel: str
    escalate_to: tuple[str, ...]
    receiver: str = "slack"


def _inherit(parent: ResolvedRoute, route: Route, path: str) -> ResolvedRoute:
    def pick(name: str, value):
        return getattr(parent, name) if value is None else value

    return ResolvedRoute(
        path=path,
        channel=pick("channel", route.channel),
        group_by=pick("group_by", tuple(route.group_by) if route.group_by is not None else None),
        group_wait=pick("group_wait", route.group_wait),
        group_interval=pick("group_interval", route.group_interval),
        repeat_interval=pick("repeat_interval", route.repeat_interval),
        quiet_hours=pick("quiet_hours", route.quiet_hours),
        urgent=pick("urgent", route.urgent),
        escalation_channel=pick("escalation_channel", route.escalation_channel),
        escalate_to=pick("escalate_to", tuple(route.escalate_to) if route.escalate_to is not None else None),
        receiver=pick("receiver", route.receiver),
    )


def root_defaults(brand: Brand) -> ResolvedRoute:
    """What a route tree with nothing set does: group per brand into the brand's channel."""
    return ResolvedRoute(path="", channel=brand.slack_channel, group_by=DEFAULT_GROUP_BY,
                         group_wait=DEFAULT_GROUP_WAIT, group_interval=DEFAULT_GROUP_INTERVAL,
                         repeat_interval=DEFAULT_REPEAT_INTERVAL, quiet_hours=None, urgent=False,
                         escalation_channel=brand.slack_channel, escalate_to=())


def matches(match: RouteMatch, brand_id: str, mention: StoredMention, labels: Labels) -> bool:
    if match.brand is not None and brand_id not in match.brand:
        return False
    if match.source is not None and mention.source_id not in match.source and mention.source not in match.source:
        return False
    if match.sentiment is not None and labels.sentiment not in match.sentiment:
        return False
    if match.intent is not None and labels.intent not in match.intent:
        return False
    if match.needs_reply is not None and labels.needs_reply != match.needs_reply:
        return False
    if match.reach_at_least is not None and (mention.reach or 0) < match.reach_at_least:
        return False
    if match.language is not None and (labels.language or "") not in match.language:
        return False
    if match.keywords is not None:
        text = f"{mention.title or ''}\n{mention.text}".casefold()
        if not any(k.casefold() in text for k in match.keywords):
            return False
    return True


def resolve_routes(root: Route, brand_id: str, brand: Brand, mention: StoredMention,
                   labels: Labels) -> list[ResolvedRoute]:
    """Every route this mention is sent through, in tree order (more than one only with `continue`)."""

    def walk(route: Route, parent: ResolvedRoute, path: str) -> list[ResolvedRoute]:
        here = _inherit(parent, route, path)
        out: list[ResolvedRoute] = []
        for i, child in enumerate(route.routes):
            if not matches(child.match, brand_id, mention, labels):
                continue
            out += walk(child, here, f"{path}.{i}")
            if not child.continue_:
                break
        return out or [here]

    return walk(root, root_defaults(brand), "root")


def route_at(root: Route, path: str, brand: Brand) -> ResolvedRoute:
    """The settings of the route `path` names (a notification's route), after a reload too: a path the
    tree no longer has resolves to its deepest surviving ancestor."""
    here = _inherit(root_defaults(brand), root, "root")
    node = root
    for part in path.split(".")[1:]:
        if not part.isdigit() or int(part) >= len(node.routes):
            break
        node = node.routes[int(part)]
        here = _inherit(here, node, f"{here.path}.{part}")
    return here


def group_key(route: ResolvedRoute, brand_id: str, mention: StoredMention, labels: Labels) -> str:
    """Route path plus the values of its group_by labels, e.g. `root.1|brand=acme|intent=complaint`.

    Without `brand` in group_by the channel joins the key: brands' default channels differ."""
    values = {"brand": brand_id, "source": mention.source_id, "intent": labels.intent,
              "sentiment": labels.sentiment, "route": route.path, "mention": str(mention.id)}
    parts = [route.path] + [f"{label}={values[label]}" for label in route.group_by if label != "route"]
    if "brand" not in route.group_by and "mention" not in route.group_by:
        parts.append(f"channel={route.channel}")
    return "|".join(parts)


def shortest_repeat_interval(root: Route) -> timedelta:
    """The most often any route reminds: how long a reminded clock can surely be left alone."""
    def walk(route: Route) -> list[timedelta]:
        own = [route.repeat_interval] if route.repeat_interval is not None else []
        return own + [t for child in route.routes for t in walk(child)]

    return min([DEFAULT_REPEAT_INTERVAL] + walk(root))
