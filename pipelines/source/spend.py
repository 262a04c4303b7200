"""Every call is written down before it is sent, and no call goes past the day's ceiling: the
day's cost never misses the calls of a run that died (``kill -9``, an OOM), and no failure of
the API, of a run or of an operator can spend more than the source's ceiling (``core/ceiling.py``).

A client is *granted* calls a block at a time: the warehouse raises its row's count by a block
only while every client of the source and day together stay within the ceiling (one locked
statement, shared by every step, run and worker), before the first of them is sent; the next
block is asked for when half of this one is used, in the background, so a call rarely waits. A
block is about ``horizon`` seconds of the client's calls (at least ``min_block``, at most
``max_block``), fewer when the ceiling is near. A block granted short means the ceiling is
reached: the calls it covers go out, and every call after them raises ``SpendCeilingReached``
without being sent. When the client closes, the exact count (and cost) replaces the grant,
giving back what it did not use. A run that dies leaves its last grant: the day's figures then
hold at least every call it sent, and at most one block more.

No call goes out that is not granted: while the warehouse cannot be written, calls wait for it
(up to ``patience`` seconds, then the step fails and is retried), rather than spend blind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from pipelines.core.ceiling import Ceiling, Grant

log = logging.getLogger(__name__)

# (calls, cost, final) -> the grant: a blocking write, run in a worker thread. ``final``: the
# exact count once no more calls will be sent (always written; never refused).
Write = Callable[[int, float, bool], Grant]


class SpendCeilingReached(Exception):
    """The day's spending ceiling is reached: this call is not sent."""


class SpendLog:
    def __init__(
        self,
        write: Write,
        price: float = 0.0,
        min_block: int = 32,
        max_block: int = 4096,
        horizon: float = 0.5,
        patience: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        on_reached: Callable[[Ceiling], None] | None = None,
    ) -> None:
        """``price``: what one call of this client may cost at most (its dearest kind);
        ``on_reached``: told (in a worker thread) when the ceiling first holds a call back."""
        if not 2 <= min_block <= max_block:
            raise ValueError(f"need 2 <= min_block <= max_block, got {min_block} and {max_block}")
        self._write, self.price, self._on_reached = write, price, on_reached
        self.capped: Ceiling | None = None  # the ceiling, once it granted less than asked
        self._noted: asyncio.Future[None] | None = None
        self.closed = False
        self.min_block, self.max_block, self.horizon, self.patience = min_block, max_block, horizon, patience
        self.clock = clock
        self.started = 0  # calls about to be sent
        self.reserved = 0  # calls granted (written down)
        self.block = min_block
        self.writes = 0
        self.reached: Ceiling | None = None  # the ceiling, once it held a call back
        self._pending: asyncio.Future[None] | None = None
        self._since: tuple[float, int] | None = None  # (when, started) at the last grant

    @property
    def exhausted(self) -> bool:
        """The ceiling capped the grants and every call granted is spent: nothing more goes out."""
        return self.capped is not None and self.started >= self.reserved

    async def before_send(self) -> None:
        """Count a call about to go out; wait only if it is past what is granted. Raises
        ``SpendCeilingReached`` (the call is not counted) when the ceiling holds it back."""
        self.started += 1
        while self.started > self.reserved - self.block // 2:
            if self.started <= self.reserved and self.capped is not None:
                return  # granted before the ceiling capped the grants; no more to ask for
            if self.started > self.reserved and self.capped is not None:
                self.started -= 1
                self._reached(self.capped)
                raise SpendCeilingReached(self._message())
            if self._pending is None or self._pending.done():
                self._pending = asyncio.ensure_future(self._reserve(self.started + self._next_block()))
            if self.started <= self.reserved:
                return  # the next block is on its way; this call is already covered
            try:
                await asyncio.shield(self._pending)
            except BaseException:
                self.started -= 1
                raise

    def ceiling_message(self) -> str:
        if self.capped is not None:
            self._reached(self.capped)
        return self._message()

    def _message(self) -> str:
        ceiling = self.capped.describe() if self.capped is not None else "?"
        return (
            f"the day's spending ceiling ({ceiling}) is reached: not sent; the sub-job goes to the retry "
            "queue, first in line tomorrow (spend: in the declaration)"
        )

    def _reached(self, ceiling: Ceiling) -> None:
        if self.reached is None:
            self.reached = ceiling
            if self._on_reached is not None:
                self._noted = asyncio.ensure_future(asyncio.to_thread(self._on_reached, ceiling))

    def _next_block(self) -> int:
        """About ``horizon`` seconds of calls at the pace since the last grant."""
        now = self.clock()
        if self._since is not None and now > self._since[0]:
            pace = (self.started - self._since[1]) / (now - self._since[0])
            wanted = min(int(pace * self.horizon), 2 * self.block)  # at most doubling: a burst is not a pace
            self.block = max(self.min_block, min(self.max_block, wanted))
        self._since = (now, self.started)
        return self.block

    async def _reserve(self, upto: int) -> None:
        """Ask for calls up to ``upto``; a warehouse that cannot be written is asked again (the
        calls past the grant wait meanwhile) until ``patience`` runs out."""
        waited, pause = 0.0, 0.5
        while True:
            try:
                grant = await asyncio.to_thread(self._write, upto, upto * self.price, False)
                break
            except Exception as exc:
                if waited >= self.patience:
                    raise RuntimeError(
                        f"cannot write down the calls about to be sent ({exc}): no call goes out unwritten"
                    ) from exc
                log.warning(f"cannot write down the calls about to be sent ({exc}); asking again in {pause:g}s")
                await asyncio.sleep(pause)
                waited, pause = waited + pause, min(2 * pause, 10.0)
        self.writes += 1
        self.reserved = max(self.reserved, grant.calls)
        if grant.ceiling is not None and grant.calls < upto:
            self.capped = grant.ceiling

    async def close(self, exact: int, cost: float) -> None:
        """The exact count and cost, once no more calls will be sent: what was granted and not
        used goes back to the day's ceiling. Closing again writes nothing more."""
        if self.closed:
            return
        self.closed = True
        for pending in (self._pending, self._noted):
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)
        try:
            await asyncio.to_thread(self._write, exact, cost, True)
        except Exception as exc:  # the grant stays written: at least every call sent is counted
            log.warning(f"could not write the exact count of calls ({exc}); the day keeps the grant of {self.reserved}")
