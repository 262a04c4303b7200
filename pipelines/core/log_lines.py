"""Log lines written in bunches: each Dagster log call is an event stored in the run's event log
(milliseconds each on PostgreSQL), and a line per batch made a 300-batch day store
300 of them inside its batches' event loop. Every line is still written, joined into one message
at most every ``every`` seconds."""

from __future__ import annotations

import time
from collections.abc import Callable


class Coalesced:
    def __init__(self, emit: Callable[[str], object], every: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._emit, self._every, self._clock = emit, every, clock
        self._lines: list[str] = []
        self._last = clock()

    def add(self, line: str) -> None:
        self._lines.append(line)
        if self._clock() - self._last >= self._every:
            self.flush()

    def flush(self) -> None:
        """Write what is held (nothing when nothing is)."""
        if self._lines:
            lines, self._lines = self._lines, []
            self._emit("\n".join(lines))
        self._last = self._clock()
