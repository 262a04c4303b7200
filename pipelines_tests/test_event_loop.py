"""The loop the client's coroutines run on (SYNC_EVENT_LOOP): uvloop by default, asyncio's own on
request or where uvloop is not installed."""

import asyncio
import contextlib
import sys

import uvloop

from pipelines.source import event_loop


async def _loop_class() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_runs_the_coroutine_by_default():
    assert event_loop.run(_loop_class()) is uvloop.Loop


def test_asyncio_runs_it_when_asked_for():
    ran_on = event_loop.run(_loop_class(), "asyncio")
    assert ran_on is not uvloop.Loop and issubclass(ran_on, asyncio.BaseEventLoop)


def test_without_uvloop_installed_asyncio_runs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert event_loop.loop_factory("uvloop") is None
    assert event_loop.run(_loop_class()) is not uvloop.Loop


def test_a_failure_inside_comes_out_as_itself_and_the_loop_is_closed():
    loops = []

    async def fails() -> None:
        loops.append(asyncio.get_running_loop())
        raise KeyError("inside")

    try:
        event_loop.run(fails())
    except KeyError as exc:
        assert exc.args == ("inside",)
    else:
        raise AssertionError("the coroutine's exception was swallowed")
    assert loops[0].is_closed()


class _Cycle:
    def __init__(self) -> None:
        self.me = self  # garbage only the collector can free


def test_the_heap_is_frozen_while_the_loop_runs_and_collected_after():
    import gc
    import weakref

    assert gc.get_freeze_count() == 0
    held = [_Cycle()]
    gone = weakref.ref(held[0])

    async def drop_and_collect() -> int:
        held.clear()  # made before the loop: frozen, so the collector leaves it
        gc.collect()
        return gc.get_freeze_count()

    frozen = event_loop.run(drop_and_collect())
    assert frozen > 0 and gone() is not None
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None


def test_loops_of_two_threads_keep_the_heap_frozen_until_the_last_ends():
    import gc
    import threading

    first_running, second_done = threading.Event(), threading.Event()
    seen: list[int] = []

    async def first() -> None:
        first_running.set()
        await asyncio.to_thread(second_done.wait, 10)
        seen.append(gc.get_freeze_count())  # the other loop ended: still frozen for this one

    async def second() -> None:
        seen.append(gc.get_freeze_count())

    thread = threading.Thread(target=event_loop.run, args=(first(),))
    thread.start()
    assert first_running.wait(10)
    event_loop.run(second())
    second_done.set()
    thread.join(10)
    assert len(seen) == 2 and all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0


class _Interrupt(BaseException):
    """What the handler before the loop raises (Dagster's raises DagsterExecutionInterruptedError)."""


def _swallowing_callback(loop: asyncio.AbstractEventLoop) -> None:
    """A library's callback that catches everything (aiohttp's protocol, a timer): an interrupt
    raised inside it would be lost."""
    with contextlib.suppress(BaseException):  # the point
        sum(range(1000))
    loop.call_soon(_swallowing_callback, loop)


def _busy_until_stopped(cleaned: list[str]):
    async def busy() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(_swallowing_callback, loop)
        try:
            end = loop.time() + 5  # a loop nothing stops gives up here, and the test fails
            while loop.time() < end:
                await asyncio.sleep(0.001)
        finally:
            await asyncio.sleep(0.05)  # cleanup that awaits (a claim given back, calls written down)
            cleaned.append("cleaned")

    return busy()


def _signal_soon(signum: int, after: float = 0.2) -> None:
    import os
    import threading

    threading.Timer(after, os.kill, args=(os.getpid(), signum)).start()


def test_a_signal_cancels_the_loop_runs_its_cleanup_then_reaches_the_handler_before_it():
    import signal
    import time

    def raising(signum, frame):
        raise _Interrupt(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.signal(signum, raising)
        try:
            cleaned: list[str] = []
            started = time.monotonic()
            _signal_soon(signum)
            try:
                event_loop.run(_busy_until_stopped(cleaned))
            except _Interrupt as exc:
                assert exc.args == (signum,)
            else:
                raise AssertionError("the loop was not stopped")
            assert cleaned == ["cleaned"]  # its finally clauses ran before the handler's interrupt
            assert time.monotonic() - started < 2
            assert signal.getsignal(signum) is raising  # the handler before the loop is back
        finally:
            signal.signal(signum, previous)


def test_a_signal_whose_handler_only_records_it_still_stops_the_step():
    import signal

    recorded: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: recorded.append(signum))
    try:
        cleaned: list[str] = []
        _signal_soon(signal.SIGTERM)
        try:
            event_loop.run(_busy_until_stopped(cleaned), "asyncio")
        except event_loop.Stopped as exc:
            assert exc.signum == signal.SIGTERM and "SIGTERM" in str(exc)
        else:
            raise AssertionError("the loop was not stopped")
        assert recorded == [signal.SIGTERM] and cleaned == ["cleaned"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_loop_outside_the_main_thread_leaves_signals_alone():
    import signal
    import threading

    before = signal.getsignal(signal.SIGTERM)
    answers: list[int] = []

    async def quick() -> int:
        return 7

    thread = threading.Thread(target=lambda: answers.append(event_loop.run(quick())))
    thread.start()
    thread.join()
    assert answers == [7] and signal.getsignal(signal.SIGTERM) is before
