"""A source's spending ceiling for a day: the most calls (and money) every step, run and worker
of the source may spend on one partition, whatever the API does. Pure.

Declared, it is the declaration's ``spend.max_calls`` and ``spend.max_cost``. Otherwise it is
derived from what the source's strategy needs for the ids it tracks: a floor, plus ``headroom``
times the calls of a day on which every tracked id is new (the most a normal day needs: its
listing's pages, a probe or a bulk probe's share, and a detail call for each id). A normal day
never reaches it; a runaway (a listing that pages for ever, a ``Retry-After: 0`` answered to
every call, retries of every call) stops at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Ceiling:
    """What a day may spend: calls, and money at the declared prices (None: no money bound)."""

    calls: int
    cost: float | None = None

    def describe(self) -> str:
        money = f" and {self.cost:g} in money" if self.cost is not None else ""
        return f"{self.calls:,} calls{money}"


@dataclass(frozen=True)
class Grant:
    """Calls granted to one client (its count written down) and, when the ceiling held some
    back, the ceiling."""

    calls: int
    ceiling: Ceiling | None = None  # set when the ceiling granted less than asked


@dataclass(frozen=True)
class SpendPolicy:
    """How a source's ceiling is worked out for a day with ``tracked`` ids."""

    per_id: float  # calls a new id needs at most: its probe (or its share of a bulk probe) and its detail
    page_size: int = 0  # the listing's page size (0: the source lists nothing)
    headroom: float = 1.5
    floor: int = 1_000
    max_calls: int | None = None  # declared: the ceiling in calls, whatever is tracked
    max_cost: float | None = None  # declared: the ceiling in money

    def __post_init__(self) -> None:
        if self.per_id <= 0 or self.headroom < 1 or self.floor < 1:
            raise ValueError("need per_id > 0, headroom >= 1 and floor >= 1")

    def need(self, tracked: int) -> int:
        """The calls of a day on which every tracked id is new."""
        pages = math.ceil(tracked / self.page_size) + 1 if self.page_size else 0
        return math.ceil(tracked * self.per_id) + pages

    def ceiling(self, tracked: int) -> Ceiling:
        calls = (
            self.max_calls if self.max_calls is not None else self.floor + math.ceil(self.headroom * self.need(tracked))
        )
        return Ceiling(calls, self.max_cost)


def per_id_need(strategy: str, bulk_ids: int | None) -> float:
    """Calls one new id needs at most under ``strategy``: a detail call, and a probe of its own,
    or a share of a bulk probe of ``bulk_ids``. Under the listing strategies an id the listing
    does not serve is probed alone (bulk when the source has it)."""
    probe = 1 / bulk_ids if bulk_ids and strategy in ("bulk", "listing", "changed_since") else 1.0
    return 1.0 + probe
