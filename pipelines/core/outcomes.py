"""What became of each sub-job of a batch, and the batch's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    """Exactly one per sub-job and day."""

    CHANGED = "changed"  # new or changed: the detail call was made and stored
    UNCHANGED = "unchanged"
    GONE = "gone"  # 404 / 410 / missing from a bulk probe
    FAILED = "failed"  # an error the tier 1 retries could not overcome


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
    error_class: str | None = None
    http_status: int | None = None
    attempts: int = 1


@dataclass(frozen=True)
class ResourceUpdate:
    """A row for the bulk upsert of ``resources``; ``details`` is None when it was not fetched."""

    resource_id: str
    status: str  # live / gone
    fingerprint: str | None = None
    etag: str | None = None
    projected: dict | None = None
    details: dict | None = None
    changed: bool = False


@dataclass
class BatchResult:
    results: list[SubJobResult] = field(default_factory=list)
    updates: list[ResourceUpdate] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter(r.outcome.value for r in self.results)
        counts["new"] = sum(1 for r in self.results if r.reason == "new")
        return counts
