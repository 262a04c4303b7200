"""Every call is written down before it is sent, a block at a time: the day's cost never misses
the calls of a run that died (``kill -9``, an OOM), whose own figures died with it.

A client reserves a block of calls in the warehouse (its row's count goes up by a block) before
it sends the first of them, and the next block when half of this one is used, in the background,
so a request rarely waits for the write. A block is about ``horizon`` seconds of the client's
calls (at least ``min_block``, at most ``max_block``), so a fast client writes a few times a
second, not once per 32 calls. When the client closes, the exact count replaces the
reservation. A run that dies leaves its last reservation: the day's figures then hold at least
every call it sent, and at most one block more (plus the requests it had started and not yet
put on the wire). If the warehouse cannot be written, calls go on (availability first) and the
next block tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Write = Callable[[int, bool], None]  # (calls, final): a blocking write, run in a worker thread


class SpendLog:
    def __init__(
        self,
        write: Write,
        min_block: int = 32,
        max_block: int = 4096,
        horizon: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 2 <= min_block <= max_block:
            raise ValueError(f"need 2 <= min_block <= max_block, got {min_block} and {max_block}")
        self._write, self.min_block, self.max_block, self.horizon = write, min_block, max_block, horizon
        self.clock = clock
        self.started = 0  # calls about to be sent
        self.reserved = 0  # calls written down
        self.block = min_block
        self.writes = 0
        self._pending: asyncio.Future[None] | None = None
        self._since: tuple[float, int] | None = None  # (when, started) at the last reservation

    async def before_send(self) -> None:
        """Count a call about to go out; wait only if it is past what is written down."""
        self.started += 1
        while self.started > self.reserved - self.block // 2:
            if self._pending is None or self._pending.done():
                self._pending = asyncio.ensure_future(self._reserve(self.started + self._next_block()))
            if self.started <= self.reserved:
                return  # the next block is on its way; this call is already covered
            await asyncio.shield(self._pending)

    def _next_block(self) -> int:
        """About ``horizon`` seconds of calls at the pace since the last reservation."""
        now = self.clock()
        if self._since is not None and now > self._since[0]:
            pace = (self.started - self._since[1]) / (now - self._since[0])
            wanted = min(int(pace * self.horizon), 2 * self.block)  # at most doubling: a burst is not a pace
            self.block = max(self.min_block, min(self.max_block, wanted))
        self._since = (now, self.started)
        return self.block

    async def _reserve(self, upto: int) -> None:
        try:
            await asyncio.to_thread(self._write, upto, False)
            self.writes += 1
        except Exception as exc:  # the warehouse is down: keep calling, account at the next block
            log.warning(f"could not write down the calls about to be sent ({exc}); going on")
        self.reserved = max(self.reserved, upto)

    async def close(self, exact: int) -> None:
        """The exact count, once no more calls will be sent."""
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pending)
        await asyncio.to_thread(self._write, exact, True)
