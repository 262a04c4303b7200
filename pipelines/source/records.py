"""Validation of the records the API returns: anything that fails here is poison."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

from pipelines.source.errors import ErrorClass, SourceError


class ApiRecord(BaseModel):
    """The least every record carries: its id as a string. Other fields are kept as they come."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: StrictStr


class BulkProbeBody(BaseModel):
    items: list[dict[str, Any]]
    missing: list[StrictStr] = []


class ListingBody(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | int | None = None


def parse_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(ErrorClass.POISON, f"body is not JSON: {exc}") from None


def validate_record(body: Any, required: Sequence[str], expected_id: str | None = None) -> dict:
    """``body`` as a record holding ``required`` fields (non-null) and, if given, the expected id."""
    try:
        record = ApiRecord.model_validate(body)
    except ValidationError as exc:
        raise SourceError(ErrorClass.POISON, f"record fails the schema: {_first_error(exc)}") from None
    data = record.model_dump()
    missing = [name for name in required if data.get(name) is None]
    if missing:
        raise SourceError(ErrorClass.POISON, f"record lacks field(s): {', '.join(missing)}")
    if expected_id is not None and record.id != expected_id:
        raise SourceError(ErrorClass.POISON, f"record id {record.id!r} is not {expected_id!r}")
    return data


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"
