"""Splitting a day's job set into numbered batches, deterministically."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, in order."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def batch_id(partition: str, batch_no: int) -> str:
    """The id of a batch: its partition and number, e.g. ``2026-11-21#00042``."""
    return f"{partition}#{batch_no:05d}"


def batch_size_for(default: int, bulk_max_ids: int | None) -> int:
    """Sub-jobs per batch when the run does not say: ``default`` (SYNC_BATCH_SIZE), made whole
    bulk probes for a source that probes in bulk. A batch makes its own probe calls, so batches
    of 100 against a bulk probe of 250 ids would pay a call per 100 ids, and batches of 300 two
    calls per 300; rounded down to a multiple of the probe's size (at least one), every call is full."""
    if not bulk_max_ids:
        return default
    return max(bulk_max_ids, default // bulk_max_ids * bulk_max_ids)
