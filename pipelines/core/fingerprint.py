"""Fingerprints: what decides whether a resource changed since the last successful sync."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from enum import StrEnum

from pipelines.core.selectors import select


class MissingFieldsError(ValueError):
    """The record lacks a field the fingerprint is made of."""


class Change(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


def fingerprint(record: Mapping[str, object], fields: Sequence[str]) -> str:
    """A stable hash of ``fields`` of ``record``, each a name or a dotted path (``meta.etag``);
    the order of keys inside values does not matter."""
    values = [select(record, name, None) for name in fields]
    missing = [name for name, value in zip(fields, values, strict=True) if value is None]
    if missing:
        raise MissingFieldsError(f"record lacks fingerprint field(s): {', '.join(missing)}")
    payload = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def decide(stored: str | None, current: str) -> Change:
    """New when nothing is stored, changed when the fingerprints differ, else unchanged."""
    if stored is None:
        return Change.NEW
    return Change.UNCHANGED if stored == current else Change.CHANGED
