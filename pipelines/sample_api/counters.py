"""Per-endpoint counters of the sample API, so tests and benchmarks can assert billable calls."""

from __future__ import annotations

from collections import Counter

# Every request that reached an API endpoint (not /_sim) is billable, whatever its answer.
BILLABLE = ("probe", "bulk_probe", "detail", "listing")


class Counters:
    def __init__(self) -> None:
        self._c: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        self._c[name] += amount

    def reset(self) -> None:
        self._c.clear()

    def snapshot(self) -> dict[str, int]:
        snap = dict(self._c)
        snap["billable"] = sum(self._c[name] for name in BILLABLE)
        return snap
