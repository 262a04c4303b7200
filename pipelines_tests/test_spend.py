"""Calls are granted before they are sent: the written count never falls behind the calls, and
no call goes past the ceiling."""

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.ceiling import Ceiling, Grant
from pipelines.source.spend import SpendCeilingReached, SpendLog


class Book:
    """A fake warehouse row, written from worker threads like the real one; ``ceiling``: what
    it grants at most."""

    def __init__(self, ceiling: int | None = None) -> None:
        self.calls, self.final, self.writes, self.ceiling = 0, False, 0, ceiling
        self._lock = threading.Lock()

    def write(self, calls: int, cost: float, final: bool) -> Grant:
        with self._lock:
            self.writes += 1
            if final or (not self.final and calls >= self.calls):
                granted = calls if final or self.ceiling is None else max(self.calls, min(calls, self.ceiling))
                self.calls, self.final = granted, final
            short = self.ceiling is not None and not final and self.calls < calls
            return Grant(self.calls, Ceiling(self.ceiling) if short else None)


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
        await spend.close(sent, 0.0)

    asyncio.run(go())
    assert (book.calls, book.final) == (n, True)
    assert book.writes <= n // 16 + 3  # a block at a time, not a write per call


def test_no_call_goes_out_unwritten_while_the_warehouse_is_down():
    """Money before availability: calls wait for the warehouse (and go on once it is back);
    past ``patience`` the step fails rather than spend blind."""
    book, down = Book(), [True]

    def flaky(calls, cost, final):
        if down[0]:
            raise ConnectionError("the warehouse is down")
        return book.write(calls, cost, final)

    spend = SpendLog(flaky, min_block=4, patience=30)

    async def go():
        asyncio.get_running_loop().call_later(0.8, lambda: down.__setitem__(0, False))
        for _ in range(10):
            await spend.before_send()
            assert book.calls >= spend.started  # nothing goes out before it is written down

    asyncio.run(go())
    assert spend.started == 10

    never = SpendLog(lambda calls, cost, final: (_ for _ in ()).throw(ConnectionError("down")), patience=0.6)
    with pytest.raises(RuntimeError, match="no call goes out unwritten"):
        asyncio.run(never.before_send())


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 20))
def test_no_call_goes_past_the_ceiling_however_many_are_asked_for(n, ceiling, concurrency):
    book = Book(ceiling=ceiling)
    spend = SpendLog(book.write, min_block=8, max_block=64)
    sent, refused = 0, 0
    gate = asyncio.Semaphore(concurrency)

    async def one():
        nonlocal sent, refused
        async with gate:
            try:
                await spend.before_send()
            except SpendCeilingReached as exc:
                assert "spending ceiling" in str(exc) and f"{ceiling:,} calls" in str(exc)
                refused += 1
                return
            sent += 1
            await asyncio.sleep(0)

    async def go():
        await asyncio.gather(*(one() for _ in range(n)))
        await spend.close(sent, 0.0)

    asyncio.run(go())
    assert sent == min(n, ceiling) and refused == n - sent  # every call sent up to the ceiling, none past it
    assert book.calls == sent and (spend.reached is not None) == (n > ceiling)


def test_a_fast_client_writes_a_few_times_a_second_not_once_per_block():
    """Blocks follow the pace: about half a second of calls each, between 32 and 4,096."""
    now = [0.0]
    book = Book()
    spend = SpendLog(book.write, clock=lambda: now[0])

    async def go():
        for _ in range(20_000):  # 2,000 calls a second for 10 seconds
            await spend.before_send()
            now[0] += 0.0005
        await spend.close(spend.started, 0.0)

    asyncio.run(go())
    assert 990 <= spend.block <= 1000  # half a second at 2,000/s
    assert spend.writes < 60  # about 4 a second, not 20,000 / 32 = 625
    assert (book.calls, book.final) == (20_000, True)
