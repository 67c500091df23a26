"""`mentionwatch` command line: run, validate, status, export, demo (and the classifier's commands)."""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from classifiers.cli import app as classifier_app
from monitor.cli_config import DEFAULT_CONFIG, load_or_exit as _load, opened_store as _opened
from monitor.db_cli import db_app
from monitor.config import EX_CONFIG, ConfigProblem, parse_duration
from monitor.health import CLASSIFIER_HEALTH_ID
from monitor.prune import prune_command
from monitor.query_cli import match_command, route_test_command
from monitor.silence_cli import silence_app
from monitor.streams import seconds, stream_positions

app = typer.Typer(help="Watch the web for your brand and bring what needs a human into Slack.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
ConfigOption = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="Config file (env MENTIONWATCH_CONFIG)")


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(str, Enum):
    text = "text"
    json = "json"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mentionwatch")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mentionwatch {_version()}")
        raise typer.Exit()


@app.callback()
def main_options(ctx: typer.Context,
                 version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                              help="Print the version and exit"),
                 log_level: LogLevel = typer.Option(LogLevel.info, "--log-level", case_sensitive=False,
                                                    help="Least severe level logged"),
                 log_format: LogFormat = typer.Option(LogFormat.text, "--log-format", case_sensitive=False,
                                                      help="text lines, or JSON lines (time, level, logger, "
                                                           "message, source_id, mention_id) for a log shipper"),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or progress lines")) -> None:
    """Logging for every command, to stderr (secrets redacted in either format); progress of long work
    as a bar on a terminal, as log lines elsewhere, never as bars in JSON logs, none with --quiet."""
    from monitor.core import progress
    from monitor.core.logs import setup_logging

    setup_logging(log_level.value, log_format.value)
    progress.configure(bars=log_format is LogFormat.text, quiet=quiet)
    ctx.obj = {"log_format": log_format.value}


@app.command()
def run(ctx: typer.Context, config: str = ConfigOption,
        once: bool = typer.Option(False, "--once", help="Run every job once, print a summary line and exit"),
        log_level: Optional[LogLevel] = typer.Option(None, "--log-level", case_sensitive=False,
                                                     help="Same as the global --log-level")) -> None:
    """Run the monitor: poll every source on its interval, classify, and alert in Slack."""
    from monitor.core import progress
    from monitor.daemon import EXIT_DATABASE_BUSY, Daemon
    from monitor.core.logs import setup_logging
    from monitor.store.exclusive import DatabaseBusy

    progress.configure(bars=False, quiet=progress.quiet())  # its stderr is a log: lines, never bars

    if log_level is not None:
        setup_logging(log_level.value, (ctx.obj or {}).get("log_format", "text"))
    settings = _load(config)
    try:
        daemon = Daemon(config, settings)
    except DatabaseBusy as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_DATABASE_BUSY)
    if once:
        code = daemon.run_once()
        typer.echo(daemon.summary.line())
        raise typer.Exit(code)
    raise typer.Exit(daemon.run())


class ValidateFormat(str, Enum):
    text = "text"
    json = "json"


@app.command()
def validate(path: str = typer.Argument(DEFAULT_CONFIG, help="Config file to check"),
             check_slack: bool = typer.Option(False, "--check-slack",
                                              help="Also ask Slack whether every configured channel exists"),
             strict: bool = typer.Option(False, "--strict", help="Warnings fail too (exit 78)"),
             fmt: ValidateFormat = typer.Option(ValidateFormat.text, "--format"),
             no_environment: bool = typer.Option(False, "--no-environment",
                                                 help="Check the structure without the secrets (for CI): an unset "
                                                      "${VAR} is fine and the database directory is not checked")
             ) -> None:
    """Check a config file: schema, references, routes and environment. Exits 0 when valid, 78 when not
    (or, with --strict, when there is a warning)."""
    from dataclasses import asdict

    from alerts.receivers import receiver_types
    from monitor.config import ConfigError, load_settings
    from monitor.yamlsource import UnresolvedEnvironment
    from monitor.core.logs import get_logger

    settings, warnings, problems = None, [], []
    env = UnresolvedEnvironment(os.environ) if no_environment else None
    try:
        settings, warnings = load_settings(path, env, check_environment=not no_environment,
                                           receiver_types=receiver_types())
    except ConfigError as exc:
        problems = list(exc.problems)
    except Exception as exc:  # noqa: BLE001 - validate answers 0 or 78 for every input, never a traceback
        get_logger(__name__).debug("validate: unexpected error", exc_info=True)
        problems = [ConfigProblem(path, 1, "", type(exc).__name__, "a config mentionwatch can read "
                                  "(this input hit a bug in the checks: please report it)")]
    if settings is not None and check_slack:
        problems += _missing_channels(path, settings)
    failed = bool(problems) or (strict and bool(warnings))
    sources = sum(len(b.sources) for b in settings.brands.values()) if settings is not None else 0
    if fmt is ValidateFormat.json:
        typer.echo(json.dumps({"file": path, "valid": not failed, "errors": [asdict(p) for p in problems],
                               "warnings": [asdict(w) for w in warnings],
                               "brands": len(settings.brands) if settings is not None else 0, "sources": sources},
                              ensure_ascii=False, indent=2))
    else:
        for problem in problems + warnings:
            typer.echo(str(problem), err=True)
        if not failed:
            typer.echo(f"{path}: OK ({len(settings.brands)} brands, {sources} sources)")
        elif not problems:
            typer.echo(f"{path}: {len(warnings)} warning(s), failing because of --strict", err=True)
    if failed:
        raise typer.Exit(EX_CONFIG)


def _missing_channels(path: str, settings) -> list[ConfigProblem]:
    """Channels the config names that Slack does not list to the bot (conversations.list)."""
    from slack_sdk.errors import SlackApiError

    from alerts.slack import channels, make_client
    from monitor.config import channel_settings
    from monitor.yamlsource import load_yaml

    lines = load_yaml(Path(path).read_text(encoding="utf-8"), os.environ).lines
    client = make_client(settings.slack)
    names, ids = set(), set()
    try:
        for channel in channels(client):
            names.add("#" + channel.get("name", ""))
            ids.add(channel.get("id"))
    except SlackApiError as exc:
        return [ConfigProblem(path, lines.get(("slack", "token"), lines.get(("slack",), 1)), "slack",
                              "conversations.list", f"Slack answered {exc.response.get('error', 'an error')}: "
                              "check the token and its channels:read/groups:read scopes")]
    return [ConfigProblem(path, lines.get(key, 1), ".".join(map(str, key)), repr(channel),
                          "no such channel visible to the bot (create it, or invite the bot to a private one)")
            for key, channel in channel_settings(settings) if channel not in names and channel not in ids]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading `'`
    (OWASP's CSV injection rule), so `=HYPERLINK(…)` is shown, not followed."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


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
    from monitor.core.logs import REDACTOR
    from monitor.core.progress import Progress

    settings = _load(config)
    out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        with _opened(settings) as store, Progress("exporting mentions", unit="rows") as progress:
            writer = None
            for row in store.export_rows(_since(since)):
                progress.advance()
                row = {k: REDACTOR.redact_value(v.isoformat() if isinstance(v, datetime) else v)
                       for k, v in row.items()}
                if fmt is ExportFormat.jsonl:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    continue
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow({k: csv_safe(v) for k, v in row.items()})
    finally:
        if output:
            out.close()


class StatusFormat(str, Enum):
    table = "table"
    json = "json"


# `status` exit codes, as a Nagios/Icinga check reads them (documented in the README).
STATUS_OK, STATUS_WARNING, STATUS_CRITICAL = 0, 1, 2


def status_verdict(states: dict[str, str], oldest_waiting: datetime | None, now: datetime,
                   stuck_after: timedelta) -> tuple[int, list[str]]:
    """The check's exit code and its reasons: a failing source warns; a disabled source (its
    credentials were refused: it stays off until a reload) or an outbox whose oldest unsent message
    waited longer than `stuck_after` is critical."""
    reasons = [f"{sid} disabled" for sid, state in states.items() if state == "disabled"]
    if oldest_waiting is not None and now - oldest_waiting > stuck_after:
        reasons.append(f"Slack outbox stuck for {int((now - oldest_waiting).total_seconds() // 60)} min")
    critical = bool(reasons)
    reasons += [f"{sid} failing" for sid, state in states.items() if state == "failing"]
    return (STATUS_CRITICAL if critical else STATUS_WARNING if reasons else STATUS_OK), reasons


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    minutes = int((now - moment).total_seconds() // 60)
    return f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago" if minutes < 2880 else f"{minutes // 1440} d ago"


@app.command()
def status(config: str = ConfigOption, fmt: StatusFormat = typer.Option(StatusFormat.table, "--format"),
           stuck_after: str = typer.Option("15m", "--stuck-after",
                                           help="An unsent Slack message older than this makes the outbox stuck")
           ) -> None:
    """Each source's health, last success and dropped posts, and the Slack outbox. Exits 0 when all is
    well, 1 when a source is failing, 2 when a source is disabled or the outbox is stuck."""
    from monitor.core.logs import redact

    try:
        stuck = parse_duration(stuck_after)
    except ValueError as exc:
        raise typer.BadParameter(f"{stuck_after!r}: {exc}", param_hint="--stuck-after") from None
    settings = _load(config)
    with _opened(settings) as store:
        health = {h.source_id: h for h in store.all_health()}
        drops = store.drop_counts()
        gaps = store.gaps()
        outbox = store.alert_counts()
        backlog = store.outbox_backlog()
        cursors = store.cursors()
    now = datetime.now(timezone.utc)
    streams = stream_positions(settings.sources(), cursors, now)
    ids = list(settings.sources()) + ["slack"] + [f"receiver:{name}" for name in settings.receivers]
    states = {sid: health[sid].state if sid in health else "never polled" for sid in ids}
    code, reasons = status_verdict(states, backlog.oldest, now, stuck)
    verdict = ("OK", "WARNING", "CRITICAL")[code]
    if fmt is StatusFormat.json:
        def when(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        sources = [{"id": sid, "state": states[sid], "kind": h.kind if h else None,
                    "since": when(h.since) if h else None, "last_success_at": when(h.last_success_at) if h else None,
                    "retry_at": when(h.retry_at) if h else None, "dropped": drops.get(sid, {}),
                    "problem": redact(h.message or "") if h else ""}
                   for sid in ids for h in [health.get(sid)]]
        typer.echo(json.dumps({
            "status": verdict.lower(), "exit_code": code, "reasons": reasons, "sources": sources,
            "gaps": [{"source_id": g["source_id"], "from": when(g["window_start"]), "to": when(g["window_end"]),
                      "estimated_count": g["estimated_count"], "reason": redact(g["reason"])} for g in gaps],
            "outbox": {"states": outbox, "waiting": backlog.waiting, "oldest_waiting_at": when(backlog.oldest)},
            "streams": [s.as_json() for s in streams],
            "classifier": health[CLASSIFIER_HEALTH_ID].message if CLASSIFIER_HEALTH_ID in health else None,
        }, ensure_ascii=False, indent=2))
        raise typer.Exit(code)
    # Every column may wrap (overflow=fold): at 80 columns a long source id breaks onto a second line
    # instead of being cut to "fernweh/re…".
    table = Table("source", "state", "last success", "dropped", "problem")
    for column in table.columns:
        column.overflow = "fold"
    for sid in ids:
        h = health.get(sid)
        if h is None:
            table.add_row(sid, "never polled", "", "", "")
            continue
        state = h.state if h.state == "ok" else f"[red]{h.state}: {h.kind}[/red]"
        if h.state != "ok" and h.since:
            state += f" since {h.since:%m-%d %H:%M}"
        if h.retry_at:
            state += f", retry {h.retry_at:%H:%M:%S}"
        table.add_row(sid, state, _ago(h.last_success_at, now),
                      ", ".join(f"{k} {v}" for k, v in drops.get(sid, {}).items()), escape(redact(h.message or "")))
    console = Console()
    console.print(table)
    if gaps:
        gap_table = Table("source", "from", "to", "≈ items", "why", title="Coverage gaps (items that could not be fetched)")
        for column in gap_table.columns:
            column.overflow = "fold"
        for gap in gaps:
            gap_table.add_row(gap["source_id"], f"{gap['window_start']:%Y-%m-%d %H:%M}" if gap["window_start"] else "?",
                              f"{gap['window_end']:%Y-%m-%d %H:%M}" if gap["window_end"] else "?",
                              str(gap["estimated_count"] or "?"), escape(redact(gap["reason"])))
        console.print(gap_table)
    for s in streams:
        console.print(f"stream {s.source_id}: cursor age {seconds(s.cursor_age_s)}, lag {seconds(s.lag_s)} at its "
                      f"last poll ({s.committed_at:%H:%M:%S} UTC)", markup=False)
    oldest = f", oldest unsent queued {_ago(backlog.oldest, now)}" if backlog.oldest else ""
    console.print(f"Slack outbox: {outbox or 'empty'}{oldest}")
    console.print(classifier_line(health.get(CLASSIFIER_HEALTH_ID)))
    console.print(f"{verdict}" + (f": {'; '.join(reasons)}" if reasons else ""), markup=False)
    raise typer.Exit(code)


def classifier_line(health) -> str:
    """What the daemon last loaded to label mentions, as it recorded it (status runs in another process)."""
    if health is None or not health.message:
        return "Classifier: not loaded yet (the daemon records it when it starts)"
    loaded = f" (loaded {health.since:%Y-%m-%d %H:%M} UTC)" if health.since else ""
    return f"Classifier: {escape(health.message)}{loaded}"


@app.command()
def demo(keep: bool = typer.Option(False, help="Keep the temporary database and config"),
         classifier: str = typer.Option("transformer", help="transformer (the local model) or lexicon"),
         timeout: float = typer.Option(60.0, min=1, help="Seconds (model load included) before the demo gives up")
         ) -> None:
    """Run the real pipeline on bundled sample data against local emulators: no credentials, no network."""
    from monitor.demo import run_demo

    raise typer.Exit(run_demo(keep=keep, classifier=classifier, timeout=timeout))


# --- reply clock: the Slack buttons from the command line --------------------------------------

ByOption = typer.Option(None, "--by", help="Who acted, as the Slack message shows it (default: your login)")
MentionId = typer.Argument(..., help="The mention id (from `mentionwatch export` or the alert)")


def _act(config: str, action_name: str, mention_id: int, by: str | None, **kwargs) -> None:
    """Run one action against the config's store; the daemon's next process run updates Slack."""
    import getpass

    from monitor import actions

    settings = _load(config)
    with _opened(settings) as store:
        result = getattr(actions, action_name)(store, settings, mention_id, by or getpass.getuser(), "cli",
                                               datetime.now(timezone.utc), **kwargs)
    if not result.ok:
        typer.echo(result.message, err=True)
        raise typer.Exit(1)
    typer.echo(f"{result.message} (Slack shows it after the daemon's next process run)")


@app.command()
def handled(mention_id: int = MentionId, by: Optional[str] = ByOption, config: str = ConfigOption) -> None:
    """Mark a mention answered: its reply clock stops and its Slack message says who handled it."""
    _act(config, "mark_handled", mention_id, by)


@app.command()
def snooze(mention_id: int = MentionId, for_: str = typer.Option("1h", "--for", help="How long: 30m, 1h, 1d"),
           by: Optional[str] = ByOption, config: str = ConfigOption) -> None:
    """No reminders or escalation for a while; then the mention comes back."""
    try:
        duration = parse_duration(for_)
    except ValueError as exc:
        raise typer.BadParameter(f"{for_!r}: {exc}", param_hint="--for") from None
    _act(config, "snooze", mention_id, by, duration=duration)


@app.command("not-relevant")
def not_relevant(mention_id: int = MentionId, by: Optional[str] = ByOption, config: str = ConfigOption) -> None:
    """Nothing to answer: stop the reply clock and leave the mention out of "needing a reply"."""
    _act(config, "not_relevant", mention_id, by)


@app.command("wrong-label")
def wrong_label(mention_id: int = MentionId,
                sentiment: Optional[str] = typer.Option(None, help="negative, neutral or positive"),
                intent: Optional[str] = typer.Option(None, help="complaint, question, praise, suggestion or other"),
                by: Optional[str] = ByOption, config: str = ConfigOption) -> None:
    """Correct a mention's labels; the correction is kept as a training example (`feedback export`)."""
    _act(config, "wrong_label", mention_id, by, sentiment=sentiment, intent=intent)


feedback_app = typer.Typer(help="Label corrections people made, as training examples.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(config: str = ConfigOption, output: Optional[Path] = typer.Option(None, "--output", "-o")) -> None:
    """Write every correction as JSONL for `mentionwatch train --feedback FILE`."""
    settings = _load(config)
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    count = 0
    try:
        with _opened(settings) as store:
            for row in store.label_feedback():
                out.write(json.dumps({"text": row["text"], "sentiment": row["sentiment"], "intent": row["intent"],
                                      "model": row["model"], "labelled_by": row["labelled_by"],
                                      "mention_id": row["mention_id"], "created_at": row["created_at"].isoformat()},
                                     ensure_ascii=False) + "\n")
                count += 1
    finally:
        if output:
            out.close()
    if output:
        typer.echo(f"{count} correction(s) written to {output}", err=True)


app.registered_commands.extend(classifier_app.registered_commands)  # classify, eval, train

# --- report ---------------------------------------------------------------------------------------

class ReportFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class ReportPeriod(str, Enum):
    day = "day"
    week = "week"


report_app = typer.Typer(help="Per brand: volume, sentiment and intents over time, complaint terms, response "
                              "times and coverage gaps.")
app.add_typer(report_app, name="report")
BrandOption = typer.Option(None, "--brand", "-b", help="One brand (default: all)")
SinceOption = typer.Option("30d", help="30d, 12h or an ISO date")


def _brand(settings, brand: str | None) -> str | None:
    if brand is not None and brand not in settings.brands:
        raise typer.BadParameter(f"{brand!r} is not a configured brand; expected one of {', '.join(settings.brands)}",
                                 param_hint="--brand")
    return brand


@report_app.callback(invoke_without_command=True)
def report(ctx: typer.Context, config: str = ConfigOption, brand: Optional[str] = BrandOption,
           since: str = SinceOption, by: ReportPeriod = typer.Option(ReportPeriod.week, "--by"),
           fmt: ReportFormat = typer.Option(ReportFormat.table, "--format"),
           chart: Optional[Path] = typer.Option(None, "--chart", help="Also draw sentiment and volume to this PNG "
                                                "(one file per brand, suffixed, when there are several)")) -> None:
    """Per brand: volume by source, sentiment share and net sentiment, intents, complaint terms, replies, gaps."""
    if ctx.invoked_subcommand is not None:
        return
    from monitor.core.progress import Progress
    from monitor.report import build_report, csv_rows, report_tables
    from monitor.responses import response_table

    settings = _load(config)
    brand = _brand(settings, brand)
    with _opened(settings) as store, Progress("report", total=1 + (1 if brand else len(settings.brands))) as step:
        reports = build_report(store, settings, since=_since(since), now=datetime.now(timezone.utc), by=by.value,
                               brand=brand, progress=lambda done, what: step.update(done, what))
    if fmt is ReportFormat.json:
        typer.echo(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
    elif fmt is ReportFormat.csv:
        fields, rows = csv_rows(reports)
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        console = Console(width=max(Console().width, 160))
        for r in reports:
            for table in report_tables(r):
                console.print(table)
            if r.responses:
                console.print(response_table(r.responses))
    if chart is not None:
        from monitor.chart import sentiment_chart

        for r in reports:
            path = chart if len(reports) == 1 else chart.with_name(f"{chart.stem}-{r.brand}{chart.suffix}")
            path.write_bytes(sentiment_chart(r))
            typer.echo(f"chart for {r.brand}: {path}", err=True)


@report_app.command("responses")
def report_responses(config: str = ConfigOption, brand: Optional[str] = BrandOption,
                     since: str = SinceOption) -> None:
    """How fast mentions needing a reply were answered, per brand and source."""
    from monitor.responses import response_stats, response_table

    settings = _load(config)
    with _opened(settings) as store:
        stats = response_stats(store, settings, brand=_brand(settings, brand), since=_since(since),
                               now=datetime.now(timezone.utc))
    Console(width=max(Console().width, 120)).print(response_table(stats))


app.command("match")(match_command)  # `match` and `route-test` live in monitor/query_cli.py
app.add_typer(db_app, name="db")  # monitor/db_cli.py
app.command("route-test")(route_test_command)
app.command("prune")(prune_command)  # retention: monitor/prune.py
app.add_typer(silence_app, name="silence")  # monitor/silence_cli.py


def main() -> None:
    app()
