"""The loop the client's coroutines run on (SYNC_EVENT_LOOP): uvloop by default, asyncio's own on
request or where uvloop is not installed."""

import asyncio
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
