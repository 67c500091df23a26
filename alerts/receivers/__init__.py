"""Receiver plug-ins, found at import time: every module of this package that declares
`PLUGIN = Receiver(...)` is one (`slack.py`, `webhook.py`). A receiver module holds its config model, its
rendering of the neutral message, its sender and that entry, so adding a receiver is adding its module (plus
its emulator, tests and docs): the config (`load_settings(receiver_types=...)`), routing (which receivers
thread and update) and `Pipeline.deliver` (`Receivers`) read this registry."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Callable, Protocol

from pydantic import BaseModel

from monitor.core.logs import REDACTOR, secrets_of
from monitor.store import Store


@dataclass
class DeliveryReport:
    """What one drain of the outbox did, over every receiver it covers."""

    sent: int = 0
    reconciled: int = 0  # found already delivered (read back) after an unknown outcome: recorded, not resent
    failed: int = 0
    held: int = 0  # waiting for the message they thread under or update to be sent first, or for a pause
    stopped: str | None = None  # why the drain stopped early, if it did

    def add(self, other: "DeliveryReport") -> None:
        self.sent += other.sent
        self.reconciled += other.reconciled
        self.failed += other.failed
        self.held += other.held
        self.stopped = self.stopped or other.stopped


class Sender(Protocol):
    # Asked before each message; False once another node sends (several nodes: monitor/nodes.py).
    still_leader: Callable[[], bool]

    def deliver(self, limit: int = 200) -> DeliveryReport: ...


@dataclass(frozen=True)
class Receiver:
    """One receiver type's registry entry: `type` is the `type:` of its blocks under `receivers:`,
    `config` the model that validates one, and `sender(configs, store, clock)` builds what delivers the
    outbox rows of every configured receiver of this type (`configs`: name -> validated block), reading
    only those receivers' rows (`Store.outbox(limit, receivers=...)`) and never sleeping.

    What differs between receivers is declared here, never tested by name: `threads` (replies go into a
    message's thread: a group's later mentions, reminders, spike folds, replies to an alerted thread),
    `updates` (a sent message is edited: statuses, label notes, cross-post links, deletions) and
    `read_back` (an unknown outcome is looked up where it was sent, so delivery is exactly once; without
    it the sender re-sends under an idempotency key). A receiver without threads gets one message per
    group per `group_interval` and no follow-ups. `section` names a top-level config section that
    configures the one receiver of this type, under that name (`slack:`), instead of `receivers:` blocks."""

    type: str
    config: type[BaseModel]
    sender: Callable[[dict[str, Any], Store, Callable[[], datetime]], Sender]
    threads: bool = False
    updates: bool = False
    read_back: bool = False
    section: str | None = None


@cache
def receivers() -> tuple[Receiver, ...]:
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        plugin = getattr(importlib.import_module(f"{__package__}.{info.name}"), "PLUGIN", None)
        if isinstance(plugin, Receiver):
            found.append(plugin)
    return tuple(sorted(found, key=lambda r: r.type))


def receiver_types() -> dict[str, type[BaseModel]]:
    """Receiver type -> its config model, for `load_settings`: the types a `receivers:` block may name
    (a type configured by its own top-level section is not one of them)."""
    return {r.type: r.config for r in receivers() if r.section is None}


def configured(settings: Any) -> dict[str, tuple[Receiver, BaseModel]]:
    """Every receiver the settings configure, by name, with its entry and validated config: each
    section-configured type under its section's name (`slack`), then the `receivers:` blocks."""
    entries = {r.type: r for r in receivers()}
    out: dict[str, tuple[Receiver, BaseModel]] = {}
    for entry in entries.values():
        if entry.section is not None and (cfg := getattr(settings, entry.section, None)) is not None:
            out[entry.section] = (entry, cfg)
    for name, block in settings.receivers.items():
        entry = entries.get(block.type)
        if entry is None or entry.section is not None:
            known = sorted(t for t, e in entries.items() if e.section is None)
            where = f"; {block.type} is configured by the top-level `{entry.section}:` section" if entry else ""
            raise ValueError(f"receivers.{name}: unknown receiver type {block.type!r}: expected one of "
                             f"{', '.join(known)}{where}")
        typed = block if isinstance(block, entry.config) else entry.config.model_validate(block.model_dump())
        out[name] = (entry, typed)
    return out


class Receivers:
    """Every configured receiver, Slack included, alike: each type's sender drains only its own receivers'
    rows, so one's trouble never holds up another's. Rows left for a receiver no longer in the config fail
    once, saying so (no new ones can appear: routing only names configured receivers).

    Building it tells the store which receivers take follow-ups (`Store.threaded`, `Store.updatable`), so
    a reminder or status update is never queued for a message its receiver cannot thread under or edit."""

    def __init__(self, settings: Any, store: Store, clock: Callable[[], datetime]):
        found = configured(settings)
        by_type: dict[str, dict[str, Any]] = {}
        entries: dict[str, Receiver] = {}
        for name, (entry, cfg) in found.items():
            REDACTOR.update(secrets_of(cfg))
            by_type.setdefault(entry.type, {})[name] = cfg
            entries[entry.type] = entry
        self.store = store
        self.names = frozenset(found)
        self.threads = frozenset(name for name, (entry, _) in found.items() if entry.threads)
        self.updates = frozenset(name for name, (entry, _) in found.items() if entry.updates)
        store.threaded, store.updatable = self.threads, self.updates
        self.senders = [entries[kind].sender(blocks, store, clock) for kind, blocks in by_type.items()]
        self._orphans_checked = False

    def follow_lead(self, still_leader: Callable[[], bool]) -> None:
        """Several nodes: every sender stops as soon as this node no longer leads."""
        for sender in self.senders:
            sender.still_leader = still_leader

    def deliver(self, limit: int = 200) -> DeliveryReport:
        """Each sender in turn; `stopped` is the first stop any of them reported (an outage, a long 429)."""
        report = DeliveryReport()
        if not self._orphans_checked:
            report.failed += self.store.fail_unrouted(self.names)
            self._orphans_checked = True
        for sender in self.senders:
            report.add(sender.deliver(limit))
        return report
