"""What the platforms' rate-limit headers say is left of each API budget, for `/metrics`.

Connectors publish what they parse (X's `x-rate-limit-*` per endpoint, Reddit's `x-ratelimit-*` per
app); the metrics collector reads a snapshot at scrape time. In memory only: it describes the
requests this process made, which is what the headers describe too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    remaining: float
    reset_at: float | None = None  # Unix time the window resets, when the platform says


class BudgetBoard:
    """The newest reading per (platform, scope); thread-safe, since connectors poll on worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], Budget] = {}

    def publish(self, platform: str, scope: str, remaining: float, reset_at: float | None = None) -> None:
        with self._lock:
            self._budgets[(platform, scope)] = Budget(remaining, reset_at)

    def snapshot(self) -> dict[tuple[str, str], Budget]:
        with self._lock:
            return dict(self._budgets)


API_BUDGETS = BudgetBoard()
