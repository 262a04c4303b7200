"""The listing as the probe: which listing a day takes, and what its change markers say. Pure.

``listing``: the whole listing every day; each item carries the fingerprint, so the day costs its
pages plus the changed details. ``changed_since``: the listing filtered server-side from the last
complete day's latest change marker, less an overlap; an id it does not serve is unchanged
unless nothing is stored for it. Every ``reconcile_every_days`` (and whenever no watermark is
known) the whole listing is taken instead, so deletions are seen: an id it does not serve is
probed alone, and found gone.

The watermark is the latest change marker the API itself served (its clock, not ours), and it
moves only with a day whose batches all completed: a day that never synced re-reads its changes
the next day instead of losing them (the trap of an incremental cursor advanced per page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class ListingMode(StrEnum):
    FULL = "full"  # every item: the day's truth, deletions included
    CHANGED = "changed"  # only items changed since ``since``


@dataclass(frozen=True)
class ListingPlan:
    mode: ListingMode
    since: str | None = None  # the filter's value, in the API's format (changed mode)
    watermark: float | None = None  # the watermark it starts from (epoch seconds)


def plan_listing(
    changed_since: bool,
    day_index: int,
    watermark: float | None,
    overlap_seconds: float = 0.0,
    reconcile_every_days: int = 7,
    fmt: str = "iso8601",
) -> ListingPlan:
    """The listing of the ``day_index``-th day (0: the first partition)."""
    if not changed_since or watermark is None or day_index % reconcile_every_days == 0:
        return ListingPlan(ListingMode.FULL, watermark=watermark)
    return ListingPlan(ListingMode.CHANGED, format_marker(watermark - overlap_seconds, fmt), watermark)


def marker_seconds(value: object, fmt: str = "iso8601") -> float | None:
    """A change marker as epoch seconds (None when it is absent or unreadable)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if fmt == "epoch_seconds":
            seconds = float(value)  # type: ignore[arg-type]
            return seconds if math.isfinite(seconds) else None
        when = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def format_marker(seconds: float, fmt: str = "iso8601") -> str:
    if fmt == "epoch_seconds":
        return str(int(seconds))
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def later(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
