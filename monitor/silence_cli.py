"""`mentionwatch silence add|list|expire`: hold matching alerts for a while (stored, sent when the silence ends)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from monitor.cli_config import DEFAULT_CONFIG, load_or_exit as _load, opened_store as _opened
from monitor.config import parse_duration

ConfigOption = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="Config file (env MENTIONWATCH_CONFIG)")

silence_app = typer.Typer(help="Hold matching alerts for a while (stored, sent when the silence ends).",
                          no_args_is_help=True)


@silence_app.command("add")
def silence_add(matchers: list[str] = typer.Argument(..., help="key=value: brand, source (id or type), intent, "
                                                               "sentiment, channel"),
                duration: str = typer.Option(..., "--for", help="How long, e.g. 2h or 1d"),
                reason: Optional[str] = typer.Option(None, "--reason"), config: str = ConfigOption) -> None:
    """Silence alerts matching every key=value given, e.g. `silence add brand=acme source=x --for 2h`."""
    from alerts.silences import parse_matchers
    from monitor.tracker import CLOCK_LOOKBACK

    settings = _load(config)
    try:
        parsed = parse_matchers(matchers, settings)
        length = parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if length.total_seconds() <= 0:
        raise typer.BadParameter("--for: expected a duration longer than 0, e.g. 2h")
    if length > CLOCK_LOOKBACK:
        # What a silence held must still get its reply clock when released.
        raise typer.BadParameter(f"--for: expected at most {CLOCK_LOOKBACK.days}d; add a new silence when it ends")
    now = datetime.now(timezone.utc)
    with _opened(settings) as store:
        silence_id = store.add_silence(parsed, reason, os.environ.get("USER"), now, now + length, now)
    typer.echo(f"silence #{silence_id}: {' '.join(f'{k}={v}' for k, v in parsed.items())} until "
               f"{now + length:%Y-%m-%d %H:%M} UTC" + (f" ({reason})" if reason else ""))


@silence_app.command("list")
def silence_list(config: str = ConfigOption,
                 recent: str = typer.Option("1d", help="Also show silences that ended this long ago")) -> None:
    """Active silences and those that ended recently, with how many alerts each held."""
    settings = _load(config)
    now = datetime.now(timezone.utc)
    with _opened(settings) as store:
        silences = store.silences(ended_since=now - parse_duration(recent))
    table = Table("id", "matchers", "state", "until", "held", "reason")
    for silence in silences:
        state = "active" if silence.active(now) else ("pending" if silence.starts_at > now else "ended")
        table.add_row(str(silence.id), silence.describe(), state, f"{silence.ended_at():%Y-%m-%d %H:%M} UTC",
                      str(silence.held), silence.reason or "")
    Console(width=160).print(table)


@silence_app.command("expire")
def silence_expire(silence_id: int = typer.Argument(...), config: str = ConfigOption) -> None:
    """End a silence now: what it held is sent on the daemon's next run (unless handled meanwhile)."""
    settings = _load(config)
    with _opened(settings) as store:
        expired = store.expire_silence(silence_id, datetime.now(timezone.utc))
    if not expired:
        typer.echo(f"silence #{silence_id}: no such active silence", err=True)
        raise typer.Exit(1)
    typer.echo(f"silence #{silence_id} expired; its held alerts go out on the next run")
