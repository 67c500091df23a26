"""`mentionwatch` command line: run, validate, status, export, demo (and the classifier's commands)."""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from classifiers.cli import app as classifier_app
from monitor.config import EX_CONFIG, ConfigError, load_settings, parse_duration

app = typer.Typer(help="Watch the web for your brand and bring what needs a human into Slack.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
DEFAULT_CONFIG = os.environ.get("MENTIONWATCH_CONFIG", "config.yaml")
ConfigOption = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="Config file (env MENTIONWATCH_CONFIG)")


def _load(path: str):
    try:
        settings, warnings = load_settings(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EX_CONFIG) from None
    for warning in warnings:
        typer.echo(str(warning), err=True)
    return settings


@app.command()
def run(config: str = ConfigOption, once: bool = typer.Option(False, "--once", help="Run every job once and exit"),
        log_level: str = typer.Option("INFO", "--log-level")) -> None:
    """Run the monitor: poll every source on its interval, classify, and alert in Slack."""
    from monitor.daemon import Daemon
    from monitor.logs import setup_logging

    setup_logging(log_level)
    settings = _load(config)
    daemon = Daemon(config, settings)
    if once:
        daemon.run_once()
        return
    raise typer.Exit(daemon.run())


@app.command()
def validate(path: str = typer.Argument(DEFAULT_CONFIG, help="Config file to check")) -> None:
    """Check a config file: schema, references and environment. Exits 0 when valid, 78 when not."""
    settings = _load(path)
    sources = sum(len(b.sources) for b in settings.brands.values())
    typer.echo(f"{path}: OK ({len(settings.brands)} brands, {sources} sources)")


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.now(timezone.utc) - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected a duration such as 7d or a date such as 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@app.command()
def export(config: str = ConfigOption, since: Optional[str] = typer.Option(None, help="7d, 12h or an ISO date"),
           fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format"),
           output: Optional[Path] = typer.Option(None, "--output", "-o")) -> None:
    """Write stored mentions with brand, source, url, author, time, labels and alert state."""
    from monitor.store import Store

    settings = _load(config)
    store = Store(settings.storage.url)
    out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = None
        for row in store.export_rows(_since(since)):
            row = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
            if fmt is ExportFormat.jsonl:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                continue
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
    finally:
        if output:
            out.close()
        store.close()


@app.command()
def status(config: str = ConfigOption) -> None:
    """Each source's health, last success and dropped posts, and the Slack outbox."""
    from monitor.store import Store

    settings = _load(config)
    store = Store(settings.storage.url)
    health = {h.source_id: h for h in store.all_health()}
    drops = store.drop_counts()
    table = Table("source", "state", "since", "last success", "retry at", "dropped", "problem")
    now = datetime.now(timezone.utc)
    for source_id in list(settings.sources()) + ["slack"]:
        h = health.get(source_id)
        if h is None:
            table.add_row(source_id, "never polled", "", "", "", "", "")
            continue
        lag = f" ({int((now - h.last_success_at).total_seconds() // 60)} min ago)" if h.last_success_at else ""
        table.add_row(source_id, h.state if h.state == "ok" else f"[red]{h.state}: {h.kind}[/red]",
                      f"{h.since:%Y-%m-%d %H:%M}" if h.since else "",
                      (f"{h.last_success_at:%Y-%m-%d %H:%M}" + lag) if h.last_success_at else "never",
                      f"{h.retry_at:%H:%M:%S}" if h.retry_at else "",
                      ", ".join(f"{k} {v}" for k, v in drops.get(source_id, {}).items()), h.message or "")
    console = Console()
    console.print(table)
    gaps = store.gaps()
    if gaps:
        gap_table = Table("source", "from", "to", "≈ items", "why", title="Coverage gaps (items that could not be fetched)")
        for gap in gaps:
            gap_table.add_row(gap["source_id"], f"{gap['window_start']:%Y-%m-%d %H:%M}" if gap["window_start"] else "?",
                              f"{gap['window_end']:%Y-%m-%d %H:%M}" if gap["window_end"] else "?",
                              str(gap["estimated_count"] or "?"), gap["reason"])
        console.print(gap_table)
    console.print(f"Slack outbox: {store.alert_counts() or 'empty'}")
    store.close()


@app.command()
def demo(keep: bool = typer.Option(False, help="Keep the temporary database and config"),
         classifier: str = typer.Option("transformer", help="transformer (the local model) or lexicon")) -> None:
    """Run the real pipeline on bundled sample data against local emulators: no credentials, no network."""
    from monitor.demo import run_demo

    raise typer.Exit(run_demo(keep=keep, classifier=classifier))


app.registered_commands.extend(classifier_app.registered_commands)  # classify, eval, train


def main() -> None:
    app()
