"""A partition's day, and the embedded sample API's day number for it. The partitions
themselves are each source's own (``SourceScope.partitions``)."""

from __future__ import annotations

from datetime import date


def partition_day(partition_key: str) -> date:
    return date.fromisoformat(partition_key)


def simulated_day(partition_key: str, start: date) -> int:
    """The embedded sample API's day number for a partition: the source's first day is day 1."""
    return (partition_day(partition_key) - start).days + 1
