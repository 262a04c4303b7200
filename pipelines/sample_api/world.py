"""The sample API's deterministic world: which resources exist, and what they hold on a given day.

Everything here is a pure function of the seed, the resource id and the simulated day, so a test
can ask for the truth the API will serve without calling it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from pipelines.sample_api.config import SampleApiConfig

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
CATEGORIES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")
_CHEAP = frozenset({"id", "version", "updated_at"})  # fields of a record made without the rest of it
WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do")


def resource_id(index: int) -> str:
    return f"r{index:07d}"


def resource_index(rid: str) -> int | None:
    """The index of a well-formed id of this world, or None."""
    if len(rid) != 8 or rid[0] != "r" or not rid[1:].isdigit():
        return None
    return int(rid[1:])


def unit(seed: int, kind: str, rid: str, day: int = 0) -> float:
    """A deterministic number in [0, 1) for (seed, kind, id, day)."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{rid}:{day}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class World:
    """Answers "what does resource X look like on day D" for one configuration."""

    def __init__(self, config: SampleApiConfig) -> None:
        self.config = config

    def exists(self, rid: str, day: int | None = None) -> bool:
        index = resource_index(rid)
        if index is None or index >= self.config.resources:
            return False
        return self.deleted_on(rid, self._day(day)) is None

    def ids(self, day: int | None = None) -> list[str]:
        """Every live resource id on ``day``, sorted."""
        return [rid for rid in (resource_id(i) for i in range(self.config.resources)) if self.exists(rid, day)]

    def changed_on(self, rid: str, day: int) -> bool:
        return day >= 1 and unit(self.config.seed, "change", rid, day) < self.config.change_rate

    def deleted_on(self, rid: str, day: int) -> int | None:
        """The first day <= ``day`` on which the resource was deleted, or None."""
        if self.config.gone_rate <= 0:
            return None
        for d in range(1, day + 1):
            if unit(self.config.seed, "gone", rid, d) < self.config.gone_rate:
                return d
        return None

    def version(self, rid: str, day: int | None = None) -> int:
        """The last day <= ``day`` on which the resource changed (0: never since creation)."""
        for d in range(self._day(day), 0, -1):
            if self.changed_on(rid, d):
                return d
        return 0

    def is_poison(self, rid: str) -> bool:
        return unit(self.config.seed, "poison", rid) < self.config.poison_rate

    def flaky_failures(self, rid: str) -> int:
        """How many calls in a row a flaky resource fails before it answers (0: not flaky)."""
        if unit(self.config.seed, "flaky", rid) >= self.config.flaky_rate or self.config.flaky_attempts < 1:
            return 0
        return 1 + int(unit(self.config.seed, "flaky_k", rid) * self.config.flaky_attempts)

    def is_malformed(self, rid: str) -> bool:
        return unit(self.config.seed, "malformed", rid) < self.config.malformed_rate

    def record(self, rid: str, day: int | None = None) -> dict:
        """The full resource as the detail call (and an unprojected probe) returns it."""
        version = self.version(rid, day)
        h = unit(self.config.seed, "shape", rid, version)
        description = _description(int(h * 1e9) % len(WORDS), self.config.description_bytes)
        return {
            "id": rid,
            "version": version,
            "updated_at": self.updated_at(rid, version).isoformat(),
            "name": f"Resource {rid} v{version}",
            "category": CATEGORIES[int(h * len(CATEGORIES))],
            "price": round(1 + h * 999, 2),
            "tags": [WORDS[int(h * 10 + i) % len(WORDS)] for i in range(3)],
            "description": description,
            "attributes": {"weight": round(h * 50, 3), "rank": int(h * 10_000)},
        }

    def projected(self, rid: str, fields: list[str] | None) -> dict:
        """``project(record(rid), fields)``, without building the whole record when only its id,
        version or update time are asked for (a listing page: the record's text and other fields
        were most of the page's time)."""
        if not fields or not set(fields) <= _CHEAP:
            return project(self.record(rid), fields)
        cheap: dict[str, object] = {"id": rid}
        if set(fields) != {"id"}:  # the version is a walk back over the days: only when asked for
            version = cheap["version"] = self.version(rid)
            if "updated_at" in fields:
                cheap["updated_at"] = self.updated_at(rid, version).isoformat()
        return {name: cheap[name] for name in fields}

    def updated_at(self, rid: str, version: int) -> datetime:
        """When the resource last changed: some second of the day of its version."""
        return EPOCH + timedelta(days=version, seconds=int(unit(self.config.seed, "at", rid, version) * 86_399))

    def changed_since(self, rid: str, since: datetime) -> bool:
        return self.updated_at(rid, self.version(rid)) >= since

    def _day(self, day: int | None) -> int:
        return self.config.day if day is None else day


@lru_cache(maxsize=64)
def _description(start: int, size: int) -> str:
    """``size`` characters of 64 words from ``start`` on: one of ten texts, built once each."""
    text = " ".join(WORDS[(start + i * 7) % len(WORDS)] for i in range(64))
    return (text * (size // len(text) + 1))[:size]


def project(record: dict, fields: list[str] | None) -> dict:
    """Keep only ``fields`` (all of them when None or empty)."""
    if not fields:
        return record
    return {name: record[name] for name in fields if name in record}
