"""The statuses rows move through: named once, here. Pure (no SQL): the warehouse stores their
values, which StrEnum makes plain strings for SQLAlchemy and for anyone reading the tables."""

from __future__ import annotations

from enum import StrEnum


class LedgerStatus(StrEnum):
    """A batch in the ledger."""

    RUNNING = "running"  # claimed (lease running)
    COMPLETED = "completed"  # written, with its outcomes


class QueueStatus(StrEnum):
    """A tier 2 entry in the retry queue."""

    PENDING = "pending"  # waiting for its day
    SCHEDULED = "scheduled"  # handed to a day's job set
    DONE = "done"  # that day's batch consumed it
    SUPERSEDED = "superseded"  # a newer entry of the same resource took its place


class DeadLetterStatus(StrEnum):
    """A tier 3 entry in the dead letter."""

    DEAD = "dead"
    REPLAY_REQUESTED = "replay_requested"
    RESOLVED = "resolved"  # the replay synced
    FAILED_AGAIN = "failed_again"  # the replay failed: a newer entry carries the history


class ResourceStatus(StrEnum):
    LIVE = "live"
    GONE = "gone"


class Origin(StrEnum):
    """Where a sub-job of a day's job set came from."""

    WATCHLIST = "watchlist"
    RETRY = "retry"
    REPLAY = "replay"
