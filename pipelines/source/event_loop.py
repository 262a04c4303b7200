"""Where the client's coroutines run: ``run(coro)`` on uvloop (libuv's loop, in C) when the
setting allows it and uvloop is installed, else on asyncio's own loop.

Measured with ``make bench``'s ceiling (4,000 detail calls at concurrency 16, no latency, no
rate limit, medians of alternating turns): the client spent 165 instead of 187 CPU microseconds
a request on uvloop, a bare aiohttp loop 116 instead of 125. uvloop has no Windows build: there
the dependency is not installed and asyncio's loop runs.

While the loop runs, the heap it started with is frozen (``gc.freeze``): the garbage collector
then walks only what the loop makes, not the 200,000 objects of Dagster, pandas and SQLAlchemy
a step process holds. The client's requests make enough objects for a collection every few dozen
requests, and the full ones walked that whole heap: measured on a step process's heap (the
modules a step imports, 20,000 detail calls at concurrency 16), collections took 17 us a
request, 3.4 us frozen. A
whole 30,000 sub-job day at no rate limit, three runs each way turn about (``make bench
ARGS="--sections scale --n 30000 --scale-n 30000"``, 2026-12-02), spent 2.04-2.17x the API
server's CPU a request frozen, 2.29-2.39x not: about a tenth less (docs/benchmark.md). The heap
is unfrozen when the loop ends, so what became garbage meanwhile is collected after all.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopName = Literal["uvloop", "asyncio"]


def loop_factory(name: LoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when asked for and installed; None (asyncio's default) otherwise."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows)
        return None
    return uvloop.new_event_loop


_frozen = 0  # loops running with the heap frozen (threads may each run one)
_freezing = threading.Lock()


def run(coro: Coroutine[Any, Any, T], loop: LoopName = "uvloop") -> T:
    """``asyncio.run`` on the named loop (Python 3.11's ``asyncio.run`` takes no loop factory),
    with the heap it starts with frozen until the last running loop ends."""
    global _frozen
    with _freezing:
        if _frozen == 0:
            gc.freeze()
        _frozen += 1
    try:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            return runner.run(coro)
    finally:
        with _freezing:
            _frozen -= 1
            if _frozen == 0:
                gc.unfreeze()
