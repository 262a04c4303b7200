"""What became of each sub-job of a batch, and the batch's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import KW_ONLY, dataclass, field
from enum import StrEnum

from pipelines.core.errors import SourceError


class Outcome(StrEnum):
    """Exactly one per sub-job and day."""

    CHANGED = "changed"  # new or changed: the detail call was made and stored
    UNCHANGED = "unchanged"
    GONE = "gone"  # 404 / 410 / missing from a bulk probe
    RETRY = "retry"  # tier 2: queued for the next day
    DEAD = "dead"  # tier 3: in the dead letter
    FAILED = "failed"  # a batch's raw result before routing to RETRY or DEAD; never stored


@dataclass(frozen=True)
class StoredState:
    """What the warehouse holds of a resource from its last successful sync."""

    fingerprint: str | None
    etag: str | None = None


@dataclass(frozen=True)
class SubJobResult:
    resource_id: str
    outcome: Outcome
    reason: str = ""  # new / changed / not_modified / same_fingerprint / the error message
    _: KW_ONLY
    error_class: str | None = None
    http_status: int | None = None
    attempts: int = 1
    error: SourceError | None = None  # what the dead letter shows of a failed call
    tier2_days_used: int = 0  # for RETRY: the days of tier 2 this queue entry has used


@dataclass(frozen=True)
class ResourceUpdate:
    """A row for the bulk upsert of ``resources``; ``details`` is None when it was not fetched."""

    resource_id: str
    status: str  # live / gone
    fingerprint: str | None = None
    etag: str | None = None
    projected: dict | None = None
    details: dict | list | None = None
    changed: bool = False


@dataclass
class BatchResult:
    results: list[SubJobResult] = field(default_factory=list)
    updates: list[ResourceUpdate] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter(r.outcome.value for r in self.results)
        counts["new"] = sum(1 for r in self.results if r.reason == "new")
        return counts


@dataclass(frozen=True)
class Member:
    """A sub-job of a batch, with what tier 2 knows of it (zero and empty for a fresh one)."""

    resource_id: str
    origin: str = "watchlist"  # watchlist / retry / replay
    tier2_days_used: int = 0
    history: tuple[dict, ...] = ()
    dead_letter_id: str | None = None
