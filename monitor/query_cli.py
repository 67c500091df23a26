"""`mentionwatch match` and `mentionwatch route-test`: what the matcher and the route tree would do with a
text or a labelled mention, and why (the equivalent of `amtool config routes test`)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Optional

import typer

from monitor.configbase import format_duration
from monitor.query import Facts, facts_of, kept_after_labels

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (env MENTIONWATCH_CONFIG)")


def _settings(config: Optional[str]):
    from monitor.cli_config import DEFAULT_CONFIG, load_or_exit

    return load_or_exit(config or DEFAULT_CONFIG)


def _delivery(entry) -> str:
    """What a receiver's registry entry says it can do with a route's messages."""
    follow_ups = [what for what, able in (("threads", entry.threads), ("updates", entry.updates)) if able]
    once = "exactly once (read back)" if entry.read_back else "at least once (idempotency key)"
    return f"{entry.type}, {' and '.join(follow_ups) or 'no threads or updates'}, {once}"


def _source_of(settings, source: Optional[str], brand: Optional[str]) -> tuple[str | None, str | None]:
    """(platform, source id) for `--source acme/x` or `--source x`."""
    if not source:
        return None, None
    sources = settings.sources()
    if source in sources:
        return sources[source][1].type, source
    if "/" in source:
        raise typer.BadParameter(f"{source!r}: no such source (sources: {', '.join(sources) or 'none'})")
    return source, f"{brand}/{source}" if brand else None


def _facts(settings, item: dict, brand: Optional[str]) -> Facts:
    """What a JSONL line (or the options) say about a post; with no post field given, every field is
    unknown and a query that needs one says so instead of guessing."""
    from monitor.core.records import Post

    platform, source_id = _source_of(settings, item.get("source"), brand)
    known = ("source", "title", "author", "url", "type", "sub", "lang", "rating", "reach")
    if not any(item.get(k) is not None for k in known):
        return Facts()
    rating = item.get("rating")
    extra = {"subreddit": item.get("sub"), "lang": item.get("lang"), "kind": item.get("type"),
             "rating": int(rating) if rating is not None else None}
    post = Post(source=platform or "feed", external_id="-", text=item.get("text", ""), url=item.get("url"),
                author=item.get("author"), title=item.get("title"), reach=item.get("reach"), extra=extra)
    facts = facts_of(post, source_id)
    return replace(facts, kind=item["type"]) if item.get("type") else facts


def _show(verdict) -> str:
    state = {True: "MATCH", False: "no match", None: "undecided"}[verdict.matched]
    parts = [f"{verdict.brand}: {state}"]
    if verdict.clause and verdict.terms:
        parts.append(f"clause: {verdict.clause}")
        parts.append(f"terms: {', '.join(verdict.terms)}")
    if verdict.excluded_by:
        parts.append("excluded by: " + ", ".join(f'"{t}"' for t in verdict.excluded_by))
    if verdict.negated:
        parts.append("NOT terms present: " + ", ".join(verdict.negated))
    if verdict.filtered_by:
        parts.append(f"dropped by the source's filter: {verdict.filtered_by}")
    if verdict.pending:
        parts.append(f"decided once labelled: {verdict.pending}")
    return "  ".join(parts)


def match_command(text: Optional[str] = typer.Argument(None, help="Text to test; without it, JSONL on stdin "
                                                        "({\"text\": …, \"title\", \"source\", \"author\", \"url\", "
                                                        "\"type\", \"sub\", \"lang\", \"rating\", \"reach\"})"),
                  brand: Optional[str] = typer.Option(None, "--brand", help="Only this brand"),
                  source: Optional[str] = typer.Option(None, "--source", help="As found by this source (id or type)"),
                  title: Optional[str] = typer.Option(None, "--title"),
                  author: Optional[str] = typer.Option(None, "--author"),
                  url: Optional[str] = typer.Option(None, "--url"),
                  config: Optional[str] = ConfigOption) -> None:
    """Whether each text is a mention: which brand, which clause and terms, which exclusion dropped it.
    Exits 0 when some text matched, 1 when none did."""
    from monitor.matcher import Matcher

    settings = _settings(config)
    if brand is not None and brand not in settings.brands:
        raise typer.BadParameter(f"{brand!r}: no such brand (brands: {', '.join(settings.brands)})")
    matcher = Matcher.from_settings(settings)
    any_match = False
    if text is not None:
        item = {"text": text, "source": source, "title": title, "author": author, "url": url}
        searchable = "\n".join(p for p in (title, text, url) if p)
        verdicts = matcher.explain(searchable, _facts(settings, item, brand), brand)
        shown = [v for v in verdicts if brand or v.matched is not False or v.terms or v.excluded_by or v.negated]
        for verdict in shown or verdicts[:0]:
            typer.echo(_show(verdict))
        if not shown:
            typer.echo("no brand matches")
        raise typer.Exit(0 if any(v.matched for v in verdicts) else 1)
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise ValueError
        except ValueError:
            typer.echo(f"stdin:{number}: expected a JSON object with a \"text\" string", err=True)
            raise typer.Exit(2) from None
        item.setdefault("source", source)
        searchable = "\n".join(p for p in (item.get("title"), item["text"], item.get("url")) if p)
        verdicts = matcher.explain(searchable, _facts(settings, item, brand), brand)
        any_match |= any(v.matched for v in verdicts)
        typer.echo(json.dumps({"line": number, "matched": [v.brand for v in verdicts if v.matched],
                               "brands": [v.__dict__ for v in verdicts
                                          if brand or v.matched is not False or v.terms or v.excluded_by]},
                              ensure_ascii=False))
    raise typer.Exit(0 if any_match else 1)


def route_test_command(brand: str = typer.Option(..., "--brand"),
                       source: str = typer.Option(..., "--source", help="Source id (acme/x) or type (x)"),
                       intent: str = typer.Option("other", "--intent"),
                       sentiment: str = typer.Option("neutral", "--sentiment"),
                       needs_reply: bool = typer.Option(False, "--needs-reply/--no-needs-reply"),
                       reach: Optional[int] = typer.Option(None, "--reach", help="Followers, points or score"),
                       language: Optional[str] = typer.Option(None, "--language"),
                       rating: Optional[int] = typer.Option(None, "--rating", help="Stars of a review"),
                       text: str = typer.Option("", "--text", help="The text, for `keywords` and the brand's query"),
                       config: Optional[str] = ConfigOption) -> None:
    """Which route, receiver and channel a mention with these labels would take, with every setting and
    whether it is the route's own or inherited."""
    from alerts.attention import attention_of
    from alerts.receivers import configured as configured_receivers
    from alerts.routes import resolve_routes
    from monitor.core.labels import INTENTS, SENTIMENTS, Labels
    from monitor.matcher import Matcher
    from monitor.core.records import Post, StoredMention

    settings = _settings(config)
    if brand not in settings.brands:
        raise typer.BadParameter(f"{brand!r}: no such brand (brands: {', '.join(settings.brands)})")
    if intent not in INTENTS or sentiment not in SENTIMENTS:
        raise typer.BadParameter(f"expected --intent one of {', '.join(INTENTS)} and --sentiment one of "
                                 f"{', '.join(SENTIMENTS)}")
    b = settings.brands[brand]
    platform, source_id = _source_of(settings, source, brand)
    extra: dict = {"rating": rating} if rating is not None else {}
    configured = settings.sources().get(source_id, (None, None))[1]
    threshold = getattr(configured, "needs_reply_at_or_below", 2)
    if rating is not None and rating <= threshold:
        extra["needs_reply_hint"] = f"{rating}-star review"
    labels = Labels(sentiment=sentiment, sentiment_scores={sentiment: 1.0}, intent=intent,
                    intent_scores={intent: 1.0}, needs_reply=needs_reply, needs_reply_score=float(needs_reply),
                    model="route-test", language=language)
    now = datetime.now(timezone.utc)
    post = Post(source=platform, external_id="-", text=text, reach=reach, extra=extra)
    matched: dict = {brand: []}
    if text:
        match, reason = Matcher.from_settings(settings).match(text, facts_of(post, source_id))
        if match is None or brand not in match.brands:
            typer.echo(f"the text is not a mention of {brand} ({reason or 'another brand only'}): "
                       f"see `mentionwatch match`")
            raise typer.Exit(1)
        matched, extra = match.brands, {**extra, "after_labels": match.after_labels}
    mention = StoredMention(id=0, source=platform, external_id="-", source_id=source_id, brand=brand, matched=matched,
                            url=None, author=None, title=None, text=text, created_at=now, fetched_at=now,
                            reach=reach, extra=extra)
    if brand not in kept_after_labels(mention, labels).matched:
        typer.echo(f"not alerted: {brand}'s query fails once labelled ({extra['after_labels'][brand]})")
        raise typer.Exit(0)
    decision = attention_of(mention, labels)
    typer.echo(f"attention: {decision.destination}" + (f" ({decision.reason})" if decision.reason else "")
               + f", reply clock: {'yes' if decision.reply_clock else 'no'}")
    if decision.destination == "kudos":
        channel = b.kudos_channel or (b.slack_channel if decision.reply_clock else None)
        typer.echo(f"receiver: slack  channel: {channel}" if channel else "the digest and reports only (no "
                   "kudos_channel, and it asks nothing of the team)")
        return
    if decision.destination == "none":
        typer.echo("the digest and reports only")
        return
    delivery = {name: _delivery(entry) for name, (entry, _) in configured_receivers(settings).items()}
    for route in resolve_routes(settings.routes, brand, b, mention, labels):
        node = settings.routes
        for part in route.path.split(".")[1:]:
            node = node.routes[int(part)]
        own = {k for k in ("channel", "group_by", "group_wait", "group_interval", "repeat_interval",
                           "quiet_hours", "urgent", "escalation_channel", "escalate_to")
               if getattr(node, k) is not None}
        typer.echo(f"route {route.path}" + (f"  match: {node.match.model_dump(exclude_none=True)}"
                                            if route.path != "root" else ""))
        typer.echo(f"  receiver: {route.receiver}" + ("" if node.receiver is not None else " (inherited)")
                   + f"  channel: {route.channel}" + ("" if "channel" in own else " (inherited)"))
        typer.echo(f"  delivery: {delivery[route.receiver]}")
        for key in ("group_by", "group_wait", "group_interval", "repeat_interval", "quiet_hours", "urgent",
                    "escalation_channel", "escalate_to"):
            value = getattr(route, key)
            shown = ", ".join(value) if isinstance(value, tuple) else format_duration(value) \
                if isinstance(value, timedelta) else value
            typer.echo(f"  {key}: {shown if shown not in (None, '', ()) else '-'}"
                       + ("" if key in own else " (inherited)"))
