"""Progress of long work (model load, training, export, report, a labelling backlog) on stderr.

On a terminal it is a rich bar (or a spinner when the total is unknown) that disappears when done.
Anywhere else (a pipe, a log file, `run`, `--log-format json`) it is plain log lines, and only for
work that takes long: the first after `every` seconds, then one every `every` seconds and a last one
when done. `--quiet` turns both off. The CLI decides once per command with `configure`; the daemon
never draws bars, since its stderr is its log.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

from monitor.core.logs import get_logger

log = get_logger(__name__)
EVERY = 10.0  # seconds between plain progress lines (and before the first)
DRAW_EVERY = 0.1  # seconds between updates of a bar (it redraws itself 10 times a second anyway)


@dataclass
class _Mode:
    bars: bool = True    # may draw on a terminal (not `run`, not JSON logs)
    quiet: bool = False  # nothing at all


_MODE = _Mode()


def configure(*, bars: bool = True, quiet: bool = False) -> None:
    """Set once per command: `bars=False` for the daemon and JSON logs, `quiet` for --quiet."""
    _MODE.bars, _MODE.quiet = bars, quiet


def quiet() -> bool:
    return _MODE.quiet


def bars() -> bool:
    """Whether this command may draw on a terminal (False for `run` and JSON logs)."""
    return _MODE.bars


class Progress:
    """`with Progress("exporting mentions", total=n) as p: p.advance()`; `total=None` for unknown."""

    def __init__(self, what: str, total: int | None = None, unit: str = "", stream: TextIO | None = None,
                 every: float = EVERY, monotonic: Callable[[], float] = time.monotonic, bars: bool = True):
        self.what, self.total, self.unit, self.bars = what, total, unit, bars
        self.stream = stream or sys.stderr
        self.every, self.monotonic = every, monotonic
        self.done = 0
        self._bar = None
        self._lines = 0
        self._next_draw = 0.0

    def __enter__(self) -> "Progress":
        self.started = self._next_line = self.monotonic()
        self._next_line += self.every
        if not _MODE.quiet and _MODE.bars and self.bars and self.stream.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, SpinnerColumn, TextColumn,
                                       TimeElapsedColumn)

            columns = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total is not None:
                columns += [BarColumn(), MofNCompleteColumn()]
            elif self.unit:
                columns += [TextColumn("{task.completed:,.0f} " + self.unit)]
            self._bar = Bar(*columns, TimeElapsedColumn(), console=Console(file=self.stream), transient=True,
                            redirect_stdout=False, redirect_stderr=False)  # stdout is the command's output
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total)
        elif not _MODE.quiet and self._opaque:
            self._lines += 1  # one call that cannot report as it goes: say what it is waiting for
            log.info("%s…", self.what)
        return self

    @property
    def _opaque(self) -> bool:
        return self.total is None and not self.unit

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def update(self, done: int, what: str | None = None, total: int | None = None) -> None:
        """`done` so far; `what` renames the step (a report's phases); `total` once it is known."""
        self.done = done
        if what is not None:
            self.what = what
        if total is not None:
            self.total = total
        if self._bar is not None:
            if what is not None or self.monotonic() >= self._next_draw:  # a million rows: not a million redraws
                self._next_draw = self.monotonic() + DRAW_EVERY
                self._bar.update(self._task, completed=done, description=self.what, total=self.total)
        elif not _MODE.quiet and self.monotonic() >= self._next_line:
            self._next_line = self.monotonic() + self.every
            self._lines += 1
            log.info("%s: %s", self.what, self._count())

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._lines and not _MODE.quiet and exc[0] is None:
            done = "" if self._opaque else f", {self._count()}"
            log.info("%s: done%s in %.0f s", self.what, done, self.monotonic() - self.started)

    def _count(self) -> str:
        if self._opaque:
            return "still working"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.done:,} of {self.total:,}{unit}" if self.total is not None else f"{self.done:,}{unit}"
