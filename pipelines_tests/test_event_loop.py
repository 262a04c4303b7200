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
