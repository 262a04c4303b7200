"""Where the client's coroutines run: ``run(coro)`` on uvloop (libuv's loop, in C) when the
setting allows it and uvloop is installed, else on asyncio's own loop.

uvloop costs the client about an eighth less CPU a request (docs/benchmark.md, "Why the code is
as it is"). It has no Windows build: there the dependency is not installed and asyncio's loop
runs.

While the loop runs, the heap it started with is frozen (``gc.freeze``): the garbage collector
then walks only what the loop makes, not the 200,000 objects of Dagster, pandas and SQLAlchemy
a step process holds. The client's requests make enough objects for a collection every few dozen
requests, and the full ones walked that whole heap: frozen, collections cost a fifth of what
they did, and a whole day's sync about a tenth less CPU (docs/benchmark.md, "Why the code is as
it is"). The heap is unfrozen when the loop ends, so what became garbage meanwhile is collected after all.

A loop can always be stopped. Dagster turns a run's termination (the UI's Terminate, SIGTERM to
a pod, Ctrl-C) into SIGINT for the step's process and raises it where the step's code happens to
be: inside a loop that is most often a library's callback (aiohttp's protocol, a timer), which
swallows it, so the step went on calling. While a loop runs in the main thread, SIGINT and
SIGTERM are the loop's own: the first cancels the coroutine (calls in flight are cancelled,
claims given back, the calls sent written down: whatever its ``finally`` clauses do), and once it
has unwound the signal is handed to the handler that was there before (Dagster's, which raises
its interrupt), or ``Stopped`` is raised when that handler does not stop the step. A second
signal cancels the cleanup too.
"""

from __future__ import annotations

import asyncio
import gc
import signal
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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """The loop was stopped by a signal whose own handler did not stop the step (ignored, or
    one that only records it): raised once the coroutine has unwound. A KeyboardInterrupt, so
    that Dagster reports the step as interrupted and no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def run(coro: Coroutine[Any, Any, T], loop: LoopName = "uvloop") -> T:
    """``asyncio.run`` on the named loop (Python 3.11's ``asyncio.run`` takes no loop factory),
    with the heap it starts with frozen until the last running loop ends, stopped by SIGINT or
    SIGTERM (in the main thread) as the module says."""
    global _frozen
    with _freezing:
        if _frozen == 0:
            gc.freeze()
        _frozen += 1
    stop = _Stop() if threading.current_thread() is threading.main_thread() else None
    try:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            return runner.run(stop.around(coro) if stop else coro)
    finally:
        with _freezing:
            _frozen -= 1
            if _frozen == 0:
                gc.unfreeze()
        if stop is not None:
            stop.hand_on()


class _Stop:
    """SIGINT and SIGTERM while one loop runs: they cancel its coroutine, then go on to the
    handlers they had before."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    async def around(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def on_signal(signum: signal.Signals) -> None:
            if self.received is None:
                self.received = signum
            task.cancel(f"stopped by {signum.name}")

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await coro
        finally:
            self._restore(loop)

    def _restore(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)  # asyncio's default afterwards, not the one before
            if self.previous[sig] is not None:  # None: set outside Python, cannot be put back
                signal.signal(sig, self.previous[sig])

    def hand_on(self) -> None:
        """After the loop: a signal it took goes to the handler before it (Dagster's raises its
        interrupt here, outside any loop); if that one returns, the step stops all the same."""
        if self.received is None:
            return
        signum, self.received = self.received, None
        previous = self.previous[signum]
        if callable(previous):
            previous(signum, None)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signum)  # the default action: SIGINT raises, SIGTERM ends the process
        raise Stopped(signum)
