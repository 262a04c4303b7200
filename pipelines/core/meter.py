"""What calls cost and what they answered: the meter every batch and client keeps, and the
answers of the two calls a sub-job makes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallMeter:
    """Calls sent (each one billable, whatever its answer), bytes received, 429s and retries."""

    calls: Counter[str] = field(default_factory=Counter)
    bytes_received: int = 0
    throttled: int = 0
    retries: int = 0
    unsent: int = 0  # attempts that failed before reaching the API (connect errors): not billable
    embedded: int = 0  # details taken from the answer that carried them (no detail call)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def bill(self, kind: str, received: int) -> None:
        """An answered call of ``kind`` (kept to the bare additions: it runs on every call)."""
        self.calls[kind] += 1
        self.bytes_received += received

    def count(
        self, kind: str | None = None, received: int = 0, throttled: int = 0, retries: int = 0, unsent: int = 0
    ) -> None:
        """A call that was not simply answered: sent and cut short (``kind``), waited out (a
        429), retried, or never sent."""
        if kind:
            self.calls[kind] += 1
        self.bytes_received += received
        self.throttled += throttled
        self.retries += retries
        self.unsent += unsent

    def add(self, other: CallMeter) -> None:
        self.calls.update(other.calls)
        self.bytes_received += other.bytes_received
        self.throttled += other.throttled
        self.retries += other.retries
        self.unsent += other.unsent
        self.embedded += other.embedded


# The answers are made on every call: slots and no frozen (a frozen dataclass's __init__ sets each
# field through object.__setattr__, a measurable share of a call); nothing changes one once made.
@dataclass(slots=True)
class Probe:
    """A probe's answer: the projected record, or ``not_modified`` for a 304."""

    record: dict | None
    etag: str | None
    not_modified: bool = False
    attempts: int = 1
    detail: Any = None  # the detail the answer carried (detail.embedded), if usable


@dataclass(slots=True)
class Detail:
    record: dict | list  # the declared shape: an object, or a list (stored as JSON either way)
    attempts: int = 1
