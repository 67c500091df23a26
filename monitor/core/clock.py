"""The one clock type: every component that reasons about time takes a `Clock` at construction, so a
test (or the pipeline) hands the same one to all of them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable


Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The wall clock, timezone-aware in UTC."""
    return datetime.now(timezone.utc)
