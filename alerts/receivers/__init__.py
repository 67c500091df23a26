"""Receiver plug-ins besides the built-in Slack one, found at import time: every module of this package
that declares `PLUGIN = Receiver(...)` is one. A receiver module holds its config model, its rendering
of the neutral message, its sender and that entry, so adding a receiver is adding its module (plus its
emulator, tests and docs): the config (`load_settings(receiver_types=...)`) and `Pipeline.deliver`
(`Receivers`) read this registry."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from pydantic import BaseModel

from alerts.slack import DeliveryReport
from monitor.config.receivers import SLACK
from monitor.core.logs import REDACTOR, secrets_of
from monitor.store import Store


class Sender(Protocol):
    def deliver(self, limit: int = 200) -> DeliveryReport: ...


@dataclass(frozen=True)
class Receiver:
    """One receiver type's registry entry: `type` is the `type:` of its blocks under `receivers:`,
    `config` the model that validates one, and `sender(configs, store, clock)` builds what delivers the
    outbox rows of every configured receiver of this type (`configs`: name -> validated block), reading
    only those receivers' rows (`Store.outbox(limit, receivers=...)`) and never sleeping."""

    type: str
    config: type[BaseModel]
    sender: Callable[[dict[str, Any], Store, Callable[[], datetime]], Sender]


@cache
def receivers() -> tuple[Receiver, ...]:
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        plugin = getattr(importlib.import_module(f"{__package__}.{info.name}"), "PLUGIN", None)
        if isinstance(plugin, Receiver):
            found.append(plugin)
    return tuple(sorted(found, key=lambda r: r.type))


def receiver_types() -> dict[str, type[BaseModel]]:
    """Receiver type -> its config model, for `load_settings`."""
    return {r.type: r.config for r in receivers()}


class Receivers:
    """Every configured receiver but Slack: each type's sender drains only its own receivers' rows, so
    one's trouble never holds up another's. Rows left for a receiver no longer in the config fail once,
    saying so (no new ones can appear: routing only names configured receivers)."""

    def __init__(self, configs: Mapping[str, Any], store: Store, clock: Callable[[], datetime]):
        by_type: dict[str, dict[str, Any]] = {}
        entries = {r.type: r for r in receivers()}
        for name, block in configs.items():
            if block.type not in entries:
                raise ValueError(f"receivers.{name}: unknown receiver type {block.type!r}: expected one of "
                                 f"{', '.join(sorted(entries))}")
            model = entries[block.type].config
            typed = block if isinstance(block, model) else model.model_validate(block.model_dump())
            REDACTOR.update(secrets_of(typed))
            by_type.setdefault(block.type, {})[name] = typed
        self.store = store
        self.clock = clock
        self.names = frozenset(configs)
        self.senders = [entries[kind].sender(blocks, store, clock) for kind, blocks in by_type.items()]
        self._orphans_checked = False

    def deliver(self, limit: int = 200) -> DeliveryReport:
        report = DeliveryReport()
        if not self._orphans_checked:
            report.failed += self.store.fail_unrouted(self.names | {SLACK})
            self._orphans_checked = True
        for sender in self.senders:
            part = sender.deliver(limit)
            report.sent += part.sent
            report.failed += part.failed
            report.held += part.held
        return report
