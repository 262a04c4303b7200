"""Is a day's sync on track? Pure: the completion sensor feeds it the ledger's figures.

A day is *short* when, at its deadline, fewer than ``min_ratio`` of its job set's batches have
completed (250 of 300 by default); *behind pace* when, before the deadline, the pace so far
cannot reach that share in time. Alerts go out when the situation changes, never twice for the
same one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Situation(StrEnum):
    OK = "ok"
    BEHIND_PACE = "behind_pace"
    SHORT = "short"  # the deadline passed with too few batches completed
    NO_JOB_SET = "no_job_set"  # the deadline passed and the day's job set was never built


BAD = frozenset({Situation.BEHIND_PACE, Situation.SHORT, Situation.NO_JOB_SET})


@dataclass(frozen=True)
class Progress:
    partition: str
    expected: int  # batches in the day's job set
    completed: int
    first_started: datetime | None  # when the day's first batch started
    now: datetime
    deadline: datetime

    def needed(self, min_ratio: float) -> int:
        return math.ceil(min_ratio * self.expected)

    def projected(self) -> float:
        """Batches completed by the deadline at the pace so far."""
        if self.first_started is None or self.now <= self.first_started:
            return float(self.completed)
        pace = self.completed / (self.now - self.first_started).total_seconds()
        return self.completed + pace * max(0.0, (self.deadline - self.now).total_seconds())


def assess(progress: Progress, min_ratio: float) -> Situation:
    needed = progress.needed(min_ratio)
    if progress.now >= progress.deadline:
        if progress.expected == 0:
            return Situation.NO_JOB_SET
        return Situation.OK if progress.completed >= needed else Situation.SHORT
    if progress.expected == 0 or progress.completed >= needed or progress.first_started is None:
        return Situation.OK  # nothing to judge a pace by yet
    return Situation.BEHIND_PACE if progress.projected() < needed else Situation.OK


def alert_kind(previous: Situation | None, current: Situation) -> str | None:
    """What to announce on going from ``previous`` to ``current``: the new bad situation, a
    recovery, or nothing (no change, or a good day staying good)."""
    if current == previous:
        return None
    if current in BAD:
        return current.value
    if previous in BAD:
        return "recovered"
    return None
