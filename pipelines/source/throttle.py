"""A throttled API slows the client, not each call on its own. Pure.

Every 429 of a client is counted here, whichever call it answered. Its wait (``Retry-After``,
floored: a 0, a negative number, NaN or a past date waits ``min_throttle_wait``) pauses every
call of the client, and is never longer than ``max_throttle_wait``. The client stops calling,
and the rest of its day is deferred to the retry queue without being sent, when

* one 429 asks for longer than ``max_throttle_wait`` (waiting the most we would still leaves the
  API unwilling: a ``Retry-After: 86400`` answered to every call), or
* ``in_a_row`` 429s come with no usable answer between them (the API throttles everything;
  each call's own bound, ``max_throttle_attempts``, would let a whole day of calls each try
  twenty times).

Throttled calls are billable calls: the day's spending ceiling bounds their number too.
"""

from __future__ import annotations


class ThrottleAccount:
    def __init__(self, max_wait: float, in_a_row: int) -> None:
        if max_wait <= 0 or in_a_row < 1:
            raise ValueError(f"need max_wait > 0 and in_a_row >= 1, got {max_wait} and {in_a_row}")
        self.max_wait, self.max_in_a_row = max_wait, in_a_row
        self.in_a_row = 0
        self.total = 0
        self.deferred: str | None = None  # why the rest of the client's day is deferred

    def answered(self) -> None:
        """A usable answer: the API serves again."""
        self.in_a_row = 0

    def throttled(self, wait: float) -> float:
        """A 429 asking for ``wait`` seconds (floored): the pause every call of the client takes.
        Sets ``deferred`` when the API throttles past the bounds."""
        self.total += 1
        self.in_a_row += 1
        if self.deferred is None:
            if wait > self.max_wait:
                self.deferred = (
                    f"a 429 asked to wait {wait:g}s, longer than errors.max_throttle_wait ({self.max_wait:g}s): "
                    "the client stops calling and the rest of its day goes to the retry queue unsent"
                )
            elif self.in_a_row >= self.max_in_a_row:
                self.deferred = (
                    f"{self.in_a_row} 429s in a row with no usable answer between them "
                    f"(errors.max_throttled_in_a_row: {self.max_in_a_row}): the API throttles every call; the "
                    "client stops calling and the rest of its day goes to the retry queue unsent"
                )
        return min(wait, self.max_wait)
