"""Requests in flight, bounded by a limit that latency moves (ratecontrol.GradientLimit).

A semaphore whose size can change: waiters queue in order and are let in while fewer than the
limit are in flight. Cheaper than an ``asyncio.Condition`` (no lock taken on the way in or out),
which matters at a thousand requests a second on one core.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from pipelines.source.ratecontrol import GradientLimit


class ConcurrencyGate:
    def __init__(self, limit: GradientLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.clock = limit, clock
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def slot(self) -> _Slot:
        """``async with gate.slot():`` holds one of the limit's places while inside."""
        return _Slot(self)

    async def _enter(self) -> None:
        if self._waiters or self.in_flight >= self.limit.allowed():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # the releaser counted us in
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # let in, then cancelled: hand the place on
                elif waiter in self._waiters:  # a release may have dropped it already, cancelled
                    self._waiters.remove(waiter)
                raise
        else:
            self.in_flight += 1

    def _release(self) -> None:
        self.in_flight -= 1
        while self._waiters and self.in_flight < self.limit.allowed():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def sample(self, rtt: float) -> None:
        """The RTT of a successful call (429s and failures say nothing of the API's latency)."""
        self.limit.sample(rtt, self.clock())


class _Slot:
    """The gate's context manager as a plain class: ``contextlib.asynccontextmanager`` costs a
    generator and a few frames more on every request."""

    __slots__ = ("_gate",)

    def __init__(self, gate: ConcurrencyGate) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        await self._gate._enter()

    async def __aexit__(self, *exc: object) -> None:
        self._gate._release()
