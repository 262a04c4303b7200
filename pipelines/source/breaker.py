"""A circuit breaker for a persistently failing API. Pure state machine, clock injected.

closed     every call goes; outcomes fill a sliding window. When at least ``min_calls`` are in
           it and ``failure_ratio`` of them failed (5xx, timeouts, connect errors), it opens.
open       no call is sent. Calls *wait* while the outage is younger than ``hold`` seconds (a
           short blip is ridden out); after that they are rejected at once, and the caller
           queues their sub-jobs for tier 2 instead of burning retries on them.
half-open  after each ``cooldown`` one trial call goes through: success closes the breaker,
           failure opens it for another cooldown.

Hand-written because the policy needs a failure *ratio* over a window, a hold-then-reject
phase and an injectable clock for tests; pybreaker and friends count consecutive failures and
are built around synchronous calls.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Go:
    trial: bool = False


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Reject:
    reason: str


Decision = Go | Wait | Reject
_GO, _TRIAL = Go(), Go(trial=True)  # asked before every call: no new object each time


class CircuitBreaker:
    def __init__(
        self,
        window: int = 50,
        min_calls: int = 20,
        failure_ratio: float = 0.5,
        cooldown: float = 30.0,
        hold: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < failure_ratio <= 1:
            raise ValueError(f"failure_ratio must be in (0, 1], got {failure_ratio}")
        if min_calls < 1 or window < min_calls:
            raise ValueError(f"need 1 <= min_calls <= window, got {min_calls} and {window}")
        self.min_calls, self.failure_ratio = min_calls, failure_ratio
        self.cooldown, self.hold, self.clock = cooldown, hold, clock
        self._window: deque[bool] = deque(maxlen=window)  # True: failed
        self._failures = 0  # the Trues in the window
        self.state = State.CLOSED
        self._opened_at = 0.0
        self._outage_since: float | None = None
        self.times_opened = 0

    def before_call(self) -> Decision:
        if self.state is State.CLOSED:
            return _GO
        now = self.clock()
        if self.state is State.OPEN and now >= self._opened_at + self.cooldown:
            self.state = State.HALF_OPEN
            return _TRIAL
        assert self._outage_since is not None
        if now < self._outage_since + self.hold:
            next_trial = self._opened_at + self.cooldown - now
            return Wait(max(0.05, min(next_trial, self._outage_since + self.hold - now)))
        return Reject(f"circuit open since {now - self._outage_since:.0f}s: the API is failing persistently")

    def record(self, failed: bool, trial: bool = False) -> None:
        if trial:
            if failed:
                self._open()
            else:
                self.state = State.CLOSED
                self._window.clear()
                self._failures = 0
                self._outage_since = None
            return
        if self.state is not State.CLOSED:
            return  # a call sent before the breaker opened; the trial decides
        window = self._window
        if len(window) == window.maxlen and window[0]:
            self._failures -= 1  # about to fall out of the window
        window.append(failed)
        self._failures += failed
        if len(window) >= self.min_calls and self._failures / len(window) >= self.failure_ratio:
            self._open()

    def _open(self) -> None:
        now = self.clock()
        self.state = State.OPEN
        self._opened_at = now
        if self._outage_since is None:
            self._outage_since = now
            self.times_opened += 1
