"""Is a day's sync on track? Pure: the completion sensor feeds it the ledger's figures.

A day is *short* when, at its deadline, fewer than ``min_ratio`` of its job set's batches have
completed (250 of 300 by default); *behind pace* when, before the deadline, the pace so far
cannot reach that share in time; *deferred* when its batches closed but fewer than ``min_ratio``
of its sub-jobs were synced (changed, unchanged or gone): an API down all day has the circuit
breaker defer every sub-job to the retry queue, and every batch still "completes". Alerts go
out when the situation changes, never twice for the same one.
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
    DEFERRED = "deferred"  # the batches closed, but too few sub-jobs were synced (retry / dead)


BAD = frozenset({Situation.BEHIND_PACE, Situation.SHORT, Situation.NO_JOB_SET, Situation.DEFERRED})


@dataclass(frozen=True)
class Progress:
    partition: str
    expected: int  # batches in the day's job set
    completed: int
    first_started: datetime | None  # when the day's first batch started
    now: datetime
    deadline: datetime
    sub_jobs: int = 0  # of the completed batches
    synced: int = 0  # of those: changed, unchanged or gone (not deferred, not dead)

    def needed(self, min_ratio: float) -> int:
        return math.ceil(min_ratio * self.expected)

    def too_few_synced(self, min_ratio: float) -> bool:
        return self.sub_jobs > 0 and self.synced < min_ratio * self.sub_jobs

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
        if progress.completed < needed:
            return Situation.SHORT
        return Situation.DEFERRED if progress.too_few_synced(min_ratio) else Situation.OK
    if progress.expected and progress.completed >= progress.expected and progress.too_few_synced(min_ratio):
        return Situation.DEFERRED  # every batch closed: nothing more will be synced today
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
