"""The config file every command reads: its default path, and loading it with every problem and warning
printed (exit 78 on a problem). Its own module so that command modules (monitor/cli.py,
monitor/query_cli.py) share it without importing each other."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import typer

from alerts.receivers import receiver_types
from monitor.config import EX_CONFIG, ConfigError, Settings, load_settings

DEFAULT_CONFIG = os.environ.get("MENTIONWATCH_CONFIG", "config.yaml")


def load_or_exit(path: str) -> Settings:
    try:
        settings, warnings = load_settings(path, receiver_types=receiver_types())
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EX_CONFIG) from None
    for warning in warnings:
        typer.echo(str(warning), err=True)
    return settings


@contextmanager
def opened_store(settings: Settings) -> Iterator:
    """The configured store, closed however the command ends."""
    from monitor.store import Store

    store = Store(settings.storage.url)
    try:
        yield store
    finally:
        store.close()
