"""Calls are written down before they are sent: the written count never falls behind the calls."""

import asyncio
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.source.spend import SpendLog


class Book:
    """A fake warehouse row, written from worker threads like the real one."""

    def __init__(self) -> None:
        self.calls, self.final, self.writes = 0, False, 0
        self._lock = threading.Lock()

    def write(self, calls: int, final: bool) -> None:
        with self._lock:
            self.writes += 1
            if final or (not self.final and calls >= self.calls):
                self.calls, self.final = calls, final


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300), st.integers(1, 20))
def test_every_call_is_covered_before_it_is_sent(n, concurrency):
    book = Book()
    spend = SpendLog(book.write, min_block=32, max_block=32)
    sent = 0
    gate = asyncio.Semaphore(concurrency)

    async def one():
        nonlocal sent
        async with gate:
            await spend.before_send()
            assert book.calls >= sent + 1  # written down before it goes
            sent += 1
            await asyncio.sleep(0)

    async def go():
        await asyncio.gather(*(one() for _ in range(n)))
        assert 0 <= book.calls - sent <= 32 + concurrency  # what a run that died here would be charged
        await spend.close(sent)

    asyncio.run(go())
    assert (book.calls, book.final) == (n, True)
    assert book.writes <= n // 16 + 3  # a block at a time, not a write per call


def test_a_warehouse_that_cannot_be_written_never_stops_the_calls():
    def down(calls, final):
        raise ConnectionError("the warehouse is down")

    spend = SpendLog(down, min_block=4)

    async def go():
        for _ in range(10):
            await spend.before_send()

    asyncio.run(go())
    assert spend.started == 10


def test_a_fast_client_writes_a_few_times_a_second_not_once_per_block():
    """Blocks follow the pace: about half a second of calls each, between 32 and 4,096."""
    now = [0.0]
    book = Book()
    spend = SpendLog(book.write, clock=lambda: now[0])

    async def go():
        for _ in range(20_000):  # 2,000 calls a second for 10 seconds
            await spend.before_send()
            now[0] += 0.0005
        await spend.close(spend.started)

    asyncio.run(go())
    assert 990 <= spend.block <= 1000  # half a second at 2,000/s
    assert spend.writes < 60  # about 4 a second, not 20,000 / 32 = 625
    assert (book.calls, book.final) == (20_000, True)
