"""The concurrency gate: a semaphore whose size the gradient limit moves."""

import asyncio

import pytest

from pipelines.source.concurrency import ConcurrencyGate
from pipelines.source.ratecontrol import GradientLimit


async def _hold(gate: ConcurrencyGate, release: asyncio.Event, entered: list[int], n: int) -> None:
    """As the client holds a place: taken at once when free, else waited for in line."""
    if not gate.try_enter():
        await gate.enter()
    try:
        entered.append(n)
        await release.wait()
    finally:
        gate.release()


def test_no_more_than_the_limit_are_in_flight_and_waiters_enter_in_order():
    async def go():
        gate = ConcurrencyGate(GradientLimit(maximum=2, minimum=1))
        release, entered = asyncio.Event(), []
        tasks = [asyncio.create_task(_hold(gate, release, entered, n)) for n in range(5)]
        await asyncio.sleep(0.01)
        first = (list(entered), gate.in_flight)
        release.set()
        await asyncio.gather(*tasks)
        return first, entered, gate.in_flight

    (first_in, in_flight), entered, after = asyncio.run(go())
    assert first_in == [0, 1] and in_flight == 2
    assert entered == [0, 1, 2, 3, 4]
    assert after == 0


def test_a_lowered_limit_holds_new_requests_until_enough_have_left():
    async def go():
        limit = GradientLimit(maximum=4, minimum=1)
        gate = ConcurrencyGate(limit)
        release, entered = asyncio.Event(), []
        holders = [asyncio.create_task(_hold(gate, release, entered, n)) for n in range(4)]
        await asyncio.sleep(0.01)
        limit.limit = 1.0  # latency rose: one at a time from now on
        late = asyncio.create_task(_hold(gate, asyncio.Event(), entered, 99))
        await asyncio.sleep(0.01)
        waiting = 99 not in entered
        release.set()
        await asyncio.gather(*holders)
        await asyncio.sleep(0.01)
        late.cancel()
        return waiting, entered, gate.in_flight

    waiting, entered, _ = asyncio.run(go())
    assert waiting and entered[-1] == 99


async def _three_in_line():
    """A gate of one: a holder inside, then ``doomed`` and ``after`` waiting, in that order."""
    gate = ConcurrencyGate(GradientLimit(maximum=1, minimum=1))
    release, entered = asyncio.Event(), []
    holder = asyncio.create_task(_hold(gate, release, entered, 0))
    await asyncio.sleep(0.01)
    doomed = asyncio.create_task(_hold(gate, release, entered, 1))
    after = asyncio.create_task(_hold(gate, release, entered, 2))
    await asyncio.sleep(0.01)
    return gate, release, entered, holder, doomed, after


def test_a_cancelled_waiter_gives_its_place_back():
    async def go():
        gate, release, entered, holder, doomed, after = await _three_in_line()
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        release.set()
        await asyncio.gather(holder, after)
        return entered, gate.in_flight

    entered, in_flight = asyncio.run(go())
    assert entered == [0, 2]
    assert in_flight == 0


def test_a_waiter_cancelled_while_a_release_drops_it_leaves_quietly():
    """The waiter's future is cancelled, and before its task resumes a release pops it (done:
    skipped): it must leave without an error, and the gate stay whole."""

    async def go():
        gate, release, entered, holder, doomed, after = await _three_in_line()
        doomed.cancel()  # its future is cancelled now; its task resumes on the next turn
        release.set()
        gate.release()  # as the holder leaving would, in the same turn
        gate.in_flight += 1  # (the holder's own release, still to come, gives it back)
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await asyncio.gather(holder, after)
        return entered, gate.in_flight

    entered, in_flight = asyncio.run(go())
    assert entered == [0, 2] and in_flight == 0
