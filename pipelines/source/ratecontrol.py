"""How fast, and how many at once: an adaptive request rate (AIMD) and a latency-driven
concurrency limit (gradient). Pure state machines with the clock passed in; no I/O.

The rate (AIMD), one for everything that calls the API when its state is shared (shared_rate.py)
  * requests are paced one every 1/r seconds by reservation (GCRA with no burst), so the API
    sees an even stream, never a burst that its token bucket would answer with 429s;
  * r grows linearly from the rate set at the last decrease, by ``growth`` of it per second, up
    to ``ceiling`` (SOURCE_RATE_LIMIT; none: unbounded until the API says otherwise);
  * a 429 pauses every caller for its Retry-After and, once per congestion event (a 429 that
    arrives while already paused belongs to the same event), sets
    r = backoff x min(r, the rate actually sent over the last second).
  With the ceiling at the API's true rate it never throttles; with a ceiling too high (or none)
  it settles just under the true rate after a few events.

The concurrency limit (gradient, after Netflix's Gradient2)
  * RTTs of successful calls are averaged over short windows (``short``) and slowly (``long``,
    the baseline, a time constant of ``long_tau`` seconds);
  * each window: gradient = clamp(tolerance x long / short, 0.5, 1), and the limit moves towards
    limit x gradient + sqrt(limit). While latency stays within ``tolerance`` of its baseline the
    limit grows back up to its maximum; when the API slows down (latency triples), the limit
    comes down, and it comes back up once latency recovers (or the baseline has caught up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class RatePolicy:
    ceiling: float = INF  # requests/s at departure, never exceeded (INF: none); arrival jitter may add one or two
    growth: float = 0.02  # additive increase: this share of the last set rate, per second
    backoff: float = 0.85  # multiplicative decrease on a congestion event
    floor: float = 1.0  # requests/s never gone below

    def __post_init__(self) -> None:
        if not self.ceiling > 0:
            raise ValueError(f"rate ceiling must be > 0 (INF for none), got {self.ceiling}")
        if not 0 < self.backoff < 1:
            raise ValueError(f"backoff must be in (0, 1), got {self.backoff}")
        if self.growth < 0 or self.floor <= 0:
            raise ValueError(f"need growth >= 0 and floor > 0, got {self.growth} and {self.floor}")


@dataclass
class RateState:
    """What callers share (in process, or as one Redis hash: see shared_rate.py)."""

    rate: float = INF  # the rate set at the last decrease (INF: never decreased)
    since: float = 0.0  # when it was set
    tat: float = 0.0  # the next free slot
    pause_until: float = 0.0  # no request before this (the last 429's Retry-After)
    window: float = 0.0  # start of the current one-second window of reservations
    count: int = 0  # reservations in the current window
    previous: int = 0  # reservations in the window before it


def current_rate(state: RateState, policy: RatePolicy, now: float) -> float:
    if state.rate == INF:
        return policy.ceiling
    return min(policy.ceiling, state.rate * (1 + policy.growth * max(0.0, now - state.since)))


def _roll(state: RateState, now: float) -> None:
    elapsed = now - state.window
    if elapsed >= 2:
        state.window, state.count, state.previous = now, 0, 0
    elif elapsed >= 1:
        state.window, state.count, state.previous = state.window + 1, 0, state.count


def sent_rate(state: RateState, now: float) -> float:
    """Requests reserved over the last second (a sliding window made of two fixed ones)."""
    _roll(state, now)
    return state.previous * max(0.0, 1 - (now - state.window)) + state.count


def reserve(state: RateState, policy: RatePolicy, now: float) -> float:
    """Take the next slot; answer the seconds to wait before sending."""
    _roll(state, now)
    state.count += 1
    start = max(now, state.pause_until)
    rate = current_rate(state, policy, now)
    if rate == INF:
        return start - now
    slot = max(state.tat, start)
    state.tat = slot + 1 / rate
    return slot - now


def throttled(state: RateState, policy: RatePolicy, now: float, retry_after: float) -> bool:
    """A 429: pause every caller; answer True when it opened a congestion event (rate cut).

    The window of reservations rolls first, event or not, as in the Lua twin (shared_rate.py),
    which rolls on every call: rolled only on events, a 429 inside a pause left the window where
    it was, and the next event measured the rate sent over different seconds than Redis did."""
    _roll(state, now)
    event = now >= state.pause_until
    state.pause_until = max(state.pause_until, now + retry_after)
    if not event:
        return False
    rate = min(current_rate(state, policy, now), max(sent_rate(state, now), policy.floor))
    state.rate = max(policy.floor, policy.backoff * rate)
    state.since = now
    return True


class GradientLimit:
    """The concurrency limit, moved by latency. ``sample`` each successful call's RTT."""

    def __init__(
        self,
        maximum: int,
        minimum: int = 2,
        tolerance: float = 1.5,
        window: float = 0.25,
        min_samples: int = 5,
        long_tau: float = 60.0,
        smoothing: float = 0.3,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum} and {maximum}")
        self.minimum, self.maximum = minimum, maximum
        self.tolerance, self.window, self.min_samples = tolerance, window, min_samples
        self.long_tau, self.smoothing = long_tau, smoothing
        self.limit = float(maximum)  # the setter works out allowed()
        self.short: float | None = None
        self.long: float | None = None
        self._window_start: float | None = None
        self._sum = 0.0
        self._n = 0

    @property
    def limit(self) -> float:
        return self._limit

    @limit.setter
    def limit(self, value: float) -> None:
        self._limit = value
        self._allowed = max(self.minimum, int(value))  # asked on every call: worked out when it moves

    def allowed(self) -> int:
        return self._allowed

    def sample(self, rtt: float, now: float) -> None:
        if self._window_start is None:
            self._window_start = now
        self._sum += rtt
        self._n += 1
        elapsed = now - self._window_start
        if elapsed < self.window or self._n < self.min_samples:
            return
        short = self._sum / self._n
        if self.long is None:
            self.long = short
        else:
            weight = 1 - math.exp(-elapsed / self.long_tau)
            self.long += (short - self.long) * weight
        self.short = short
        gradient = min(1.0, max(0.5, self.tolerance * self.long / short)) if short > 0 else 1.0
        target = self.limit * gradient + math.sqrt(self.limit)
        self.limit = min(self.maximum, max(self.minimum, self.limit + (target - self.limit) * self.smoothing))
        self._window_start, self._sum, self._n = now, 0.0, 0
