"""Requests in flight, bounded by a limit that latency moves (ratecontrol.GradientLimit).

A semaphore whose size can change: waiters queue in order and are let in while fewer than the
limit are in flight. Cheaper than an ``asyncio.Condition`` (no lock taken on the way in or out),
which matters at thousands of requests a second on one core; for the same reason a caller takes
a free place with ``try_enter()`` (no coroutine) and awaits ``enter()`` only when it must wait:

    if not gate.try_enter():
        await gate.enter()
    try:
        ...
    finally:
        gate.release()
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

    def try_enter(self) -> bool:
        """Take a place now if one is free and nobody waits (no await: most calls need none)."""
        if self._waiters or self.in_flight >= self.limit.allowed():
            return False
        self.in_flight += 1
        return True

    async def enter(self) -> None:
        """Take a place, waiting in line for it. Leave with ``release()``."""
        if self.try_enter():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser counted us in
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # let in, then cancelled: hand the place on
            elif waiter in self._waiters:  # a release may have dropped it already, cancelled
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        while self._waiters and self.in_flight < self.limit.allowed():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def sample(self, rtt: float) -> None:
        """The RTT of a successful call (429s and failures say nothing of the API's latency)."""
        self.limit.sample(rtt, self.clock())
