"""Retention as a job: the daemon's periodic prune and `mentionwatch prune [--dry-run]`.

What may go is decided in `monitor.config.retention` (cutoffs from the policy and the clock) and
`monitor.store.retention` (what is still in use stays); this module runs it batch by batch, so the
daemon's polls and deliveries never wait more than one short transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Optional

import typer

from monitor.config.retention import RetentionConfig
from monitor.core.logs import get_logger
from monitor.store import Store
from monitor.store.retention import KINDS

log = get_logger(__name__)
WHAT = {  # what `prune` says each kind is
    "outbox": "sent or failed outbox messages (retention.outbox)",
    "digest_images": "sent weekly digest uploads (retention.digest_images)",
    "group_log": "groups quiet since (retention.outbox)",
    "mentions": "mentions with labels, notifications, replies, closed clocks (retention.mentions)",
    "slack_events": "Slack event keys (retention.slack_events)",
    "gaps": "coverage gaps (retention.history)",
    "silences": "ended silences (retention.history)",
    "spikes": "ended spikes (retention.history)",
}


def prune(store: Store, policy: RetentionConfig, now: datetime, stop: Callable[[], bool] = lambda: False
          ) -> dict[str, int]:
    """Delete what the policy lets go, `policy.batch_size` rows per transaction, until nothing is left or
    `stop()` says so (the daemon is stopping). Returns rows deleted per kind."""
    cutoffs = policy.cutoffs(now)
    deleted: dict[str, int] = {}
    for kind in KINDS:
        while not stop():
            done = store.prune_batch(kind, cutoffs, policy.batch_size)
            if done:
                deleted[kind.name] = deleted.get(kind.name, 0) + done
            if done < policy.batch_size:
                break
    if deleted:
        log.info("pruned %s", ", ".join(f"{n} {name}" for name, n in deleted.items()))
    return deleted


def prune_command(config: Optional[str] = typer.Option(None, "--config", "-c",
                                                       help="Config file (env MENTIONWATCH_CONFIG)"),
                  dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would go")) -> None:
    """Delete stored rows older than the `retention:` settings (what is still in use stays); the daemon
    does this every `retention.every`. `--dry-run` shows, per kind, what would go."""
    from monitor.cli_config import DEFAULT_CONFIG, load_or_exit

    settings = load_or_exit(config or DEFAULT_CONFIG)
    now = datetime.now(timezone.utc)
    store = Store(settings.storage.url)
    try:
        counts = store.prunable(settings.retention.cutoffs(now)) if dry_run else prune(store, settings.retention, now)
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    for kind in KINDS:
        typer.echo(f"{verb} {counts.get(kind.name, 0):>9,}  {WHAT[kind.name]}")
