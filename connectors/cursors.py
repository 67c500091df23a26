"""Cursors shared by connectors whose items carry a creation time but arrive a little out of order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class Seen:
    """What a cursor has stored: the newest creation time, and the ids created since `newest - late`.

    Items created before `newest - late` count as stored, and so do items before `floor`: where a
    first poll chose to start, so that older items are not taken for late arrivals.
    """

    newest: int
    ids: dict[str, int] = field(default_factory=dict)
    floor: int = 0

    def lowest_unknown(self, late: int) -> int:
        return max(self.newest - late, self.floor, 0)

    def is_known(self, item_id: str, created: int, late: int) -> bool:
        return created < self.lowest_unknown(late) or item_id in self.ids

    def merge(self, items: Iterable[tuple[str, int]], late: int) -> "Seen":
        ids = dict(self.ids)
        ids.update(items)
        newest = max([self.newest, *ids.values()])
        floor = self.floor if self.floor > newest - late else 0
        return Seen(newest, {i: t for i, t in ids.items() if t >= newest - late}, floor)

    def to_cursor(self) -> dict:
        return {"newest": self.newest, "ids": self.ids, **({"floor": self.floor} if self.floor else {})}

    @classmethod
    def from_cursor(cls, value: dict | None) -> "Seen | None":
        if not value:
            return None
        return cls(int(value["newest"]), {str(k): int(v) for k, v in value.get("ids", {}).items()},
                   int(value.get("floor", 0)))

    @classmethod
    def starting_at(cls, items: list[tuple[str, int]], now: int, late: int) -> "Seen":
        """Where a first poll starts: after what it read (older items are not backfilled), or at `now`."""
        if not items:
            return cls(now)
        return cls(0, floor=min(t for _, t in items)).merge(items, late)
