"""Per-endpoint counters of the sample API, so tests and benchmarks can assert billable calls,
and a per-second timeline of requests and 429s, so a benchmark can see the rate it was sent."""

from __future__ import annotations

import time
from collections import Counter

# Every request that reached an API endpoint (not /_sim) is billable, whatever its answer.
BILLABLE = ("probe", "bulk_probe", "detail", "listing")
# What else the API counts (answers and faults); every name is in a snapshot, 0 until counted.
COUNTED = (
    *BILLABLE,
    *("unauthorized", "throttled", "transient", "timeouts", "flaky", "gone", "malformed", "poison"),
    *("not_modified", "probe_full", "bytes_sent", "embedded", "token"),
)


class Counters:
    def __init__(self) -> None:
        self._c: Counter[str] = Counter()
        self.reset()

    def add(self, name: str, amount: int = 1) -> None:
        self._c[name] += amount

    def tick(self, throttled: bool) -> None:
        """One billable request, in its second since the last reset."""
        now = time.monotonic()
        second = int(now - self._started)
        self._requests[second] += 1
        self._times.append(now)
        if throttled:
            self._throttled[second] += 1

    def peak(self, window: float = 1.0) -> int:
        """The most billable requests received in any ``window`` seconds (sliding, not aligned)."""
        times, best, first = self._times, 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= window:
                first += 1
            best = max(best, last - first + 1)
        return best

    def reset(self) -> None:
        self._c.clear()
        self._started = time.monotonic()
        self._requests: Counter[int] = Counter()
        self._throttled: Counter[int] = Counter()
        self._times: list[float] = []  # when each billable request arrived (monotonic seconds)

    def snapshot(self) -> dict[str, int]:
        snap = {name: 0 for name in COUNTED} | dict(self._c)  # never counted: 0, not absent
        snap["billable"] = sum(self._c[name] for name in BILLABLE)
        return snap

    def timeline(self) -> list[list[int]]:
        """``[second, requests, 429s]`` for every second since the last reset that saw a request."""
        return [[s, self._requests[s], self._throttled[s]] for s in sorted(self._requests)]
