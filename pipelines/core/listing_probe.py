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

A change marker is data from the API, so it is judged before it moves anything (``Markers``):
one stamped past the API's own present (its ``Date`` header) is reported and never trusted (an
item stamped 2100 would move the watermark past every later change, for good); an item older
than the filter's bound means the API ignored the filter, so the day was a full listing after
all (and is treated as one: ids it did not serve are probed, deletions found).

What no listing can see: a writer that stamps a change earlier than the watermark less the
overlap (it lagged more than ``overlap_seconds``). The filter never serves it; the next full
listing (every ``reconcile_every_days``) does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

_NUMBER = re.compile(r"-?\d+(\.\d+)?")


class ListingMode(StrEnum):
    FULL = "full"  # every item: the day's truth, deletions included
    CHANGED = "changed"  # only items changed since ``since``
    PARTIAL = "partial"  # ended incomplete: what it served is used, every other id is probed


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
    """A change marker as epoch seconds (None when it is absent or unreadable): a time in ISO
    8601 (``+00:00``, ``Z``, milliseconds or none) whatever ``fmt``, or, for the epoch formats,
    a number of seconds or milliseconds."""
    if value is None or isinstance(value, bool):
        return None
    if fmt.startswith("epoch") and (isinstance(value, int | float) or _NUMBER.fullmatch(str(value).strip())):
        seconds = float(value) / (1000 if fmt == "epoch_millis" else 1)  # type: ignore[arg-type]
        return seconds if math.isfinite(seconds) else None
    try:
        when = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def format_marker(seconds: float, fmt: str = "iso8601") -> str:
    """The filter's value for ``seconds``, as the API writes times."""
    if fmt == "epoch_seconds":
        return str(int(seconds))
    if fmt == "epoch_millis":
        return str(int(seconds * 1000))
    when = datetime.fromtimestamp(seconds, UTC)
    if fmt == "iso8601_z":
        return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if fmt == "iso8601_ms_z":
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return when.isoformat()


def later(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


FUTURE_SKEW = 300.0  # seconds a change marker may run ahead of the API's clock (clocks differ a little)


@dataclass
class Markers:
    """The change markers of one listing, judged as they come: the watermark they move to, and
    what they say of the API."""

    watermark: float | None  # where the day starts from (the last complete day's)
    since: float | None = None  # the filter's bound (epoch seconds) in changed mode
    future: int = 0  # markers past the API's present, not trusted
    future_sample: list[str] = field(default_factory=list)
    older: int = 0  # items older than the filter's bound: the filter was ignored

    def see(self, rid: str, marker: float | None, present: float) -> None:
        if marker is None:
            return
        if marker > present + FUTURE_SKEW:
            self.future += 1
            if len(self.future_sample) < 5:
                self.future_sample.append(f"{rid} ({format_marker(marker)})")
            return
        if self.since is not None and marker < self.since - 1:
            self.older += 1
        self.watermark = later(self.watermark, marker)
