"""One request budget per Reddit app, shared by every Reddit source and scheduler thread.

Reddit limits requests per OAuth client id, so the budget is keyed by it. Three things can make a
request wait: our own pace (a token bucket at `requests_per_minute`), Reddit's
`x-ratelimit-remaining/-reset` (spread what is left over the time to the reset when our pace would
run out first) and a 429's `Retry-After`. A short wait is slept in the calling thread; a longer one
raises `SourceFailure(RATE_LIMITED, retry_after=…)` so the scheduler moves the poll instead.
`plan` is the pure decision; `RateBudget` adds the lock, the clock and the sleep.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from monitor.core.budgets import API_BUDGETS
from monitor.core.failures import FailureKind, MAX_RETRY_AFTER, SourceFailure

RATE_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset")


@dataclass(frozen=True)
class BudgetState:
    tokens: float                       # requests we may start now; negative: reserved ahead
    at: float                           # monotonic time `tokens` was computed
    server_remaining: float | None = None
    server_reset_at: float | None = None
    blocked_until: float = 0.0          # after a 429
    reason: str = ""


def plan(state: BudgetState, now: float, per_minute: int) -> tuple[BudgetState, float]:
    """Reserve one request: the state after it and how long to wait before sending it.

    Our pace drops to what Reddit says is left until its window resets when that is less, so the
    app never runs dry mid-window; bursts up to a tenth of the minute's budget still go at once."""
    rate, capacity = per_minute / 60.0, max(1.0, per_minute / 10.0)
    reason = f"the shared budget of {per_minute} requests a minute is used up"
    remaining, reset_at = state.server_remaining, state.server_reset_at
    if reset_at is not None and now >= reset_at:
        remaining = reset_at = None
    waits = {"Reddit answered 429 Too Many Requests": state.blocked_until - now}
    if remaining is not None and reset_at is not None:
        if remaining < 1:
            waits["Reddit's rate limit for this app is used up until its window resets"] = reset_at - now
        elif remaining / (reset_at - now) < rate:
            rate, reason = remaining / (reset_at - now), "pacing on Reddit's x-ratelimit headers"
        remaining -= 1
    tokens = min(capacity, state.tokens + max(now - state.at, 0.0) * rate)
    waits[reason] = 0.0 if tokens >= 1 else (1 - tokens) / rate
    reason, wait = max(waits.items(), key=lambda item: item[1])
    new = replace(state, tokens=tokens - 1, at=now, server_remaining=remaining, server_reset_at=reset_at,
                  reason=reason)
    return new, max(wait, 0.0)


def observe(state: BudgetState, headers: Mapping[str, str], now: float) -> BudgetState:
    """Take Reddit's view of the budget from a response; a set missing any of the three is ignored."""
    try:
        remaining, reset = float(headers["x-ratelimit-remaining"]), float(headers["x-ratelimit-reset"])
        float(headers["x-ratelimit-used"])
    except (KeyError, TypeError, ValueError):
        return state
    if not (math.isfinite(remaining) and math.isfinite(reset)):
        return state
    return replace(state, server_remaining=remaining, server_reset_at=now + min(max(reset, 0.0), MAX_RETRY_AFTER))


class RateBudget:
    """Thread-safe; `clock` is monotonic seconds, `sleep` waits (both replaceable in tests)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.per_minute = per_minute
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._state = BudgetState(tokens=max(1.0, per_minute / 10.0), at=clock())

    def acquire(self, max_wait: float) -> None:
        """Wait for one request's turn, or raise RATE_LIMITED when the turn is more than max_wait away."""
        with self._lock:
            state, wait = plan(self._state, self.clock(), self.per_minute)
            if wait > max_wait:
                raise SourceFailure(FailureKind.RATE_LIMITED, f"Reddit: {state.reason}; next request possible "
                                    f"in {wait:.0f} s", retry_after=wait)
            self._state = state
        if wait > 0:
            self.sleep(wait)

    def held_for(self) -> float:
        """Seconds until requests may go again after a 429."""
        with self._lock:
            return max(self._state.blocked_until - self.clock(), 0.0)

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None) -> None:
        with self._lock:
            now = self.clock()
            self._state = observe(self._state, headers, now)
            if self._state.server_remaining is not None:
                API_BUDGETS.publish("reddit", "app", self._state.server_remaining,  # reset: clock -> Unix time
                                    time.time() + self._state.server_reset_at - now)
            if status == 429:
                self._state = replace(self._state, blocked_until=max(self._state.blocked_until,
                                                                     now + (retry_after or 60.0)))


_BUDGETS: dict[str, RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(client_id: str, per_minute: int) -> RateBudget:
    """The process-wide budget of one Reddit app; a reloaded config may change its size."""
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(client_id)
        if budget is None:
            budget = _BUDGETS[client_id] = RateBudget(per_minute)
        budget.per_minute = per_minute
        return budget
