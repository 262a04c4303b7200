"""Validation of what the API returns: anything that fails here is poison. Where a record and
its id live is the source's declaration; a record is checked directly (see ``validate_record``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pipelines.source.declaration import Id
from pipelines.source.errors import ErrorClass, SourceError
from pipelines.source.selectors import id_text, select


def parse_json(content: bytes) -> Any:
    try:
        return orjson.loads(content)  # several times faster than json.loads on kilobyte records
    except orjson.JSONDecodeError as exc:
        raise SourceError(ErrorClass.POISON, f"body is not JSON: {exc}") from None


def validate_record(body: Any, id_spec: Id, required: Sequence[str] = (), expected_id: str | None = None) -> dict:
    """``body`` as a record: a JSON object whose id (at ``id_spec.path``, of its type) is the
    expected one when given, with the ``required`` fields (dotted paths) non-null. Checked
    directly: a model per record costs more than the request's own bookkeeping at a thousand
    records a second, for one typed field."""
    if not isinstance(body, dict):
        what = "absent" if body is None else f"not an object but {type(body).__name__}"
        raise SourceError(ErrorClass.POISON, f"record fails the schema: record: {what}")
    raw = select(body, id_spec.path, None)
    rid = id_text(raw, id_spec.type)
    if rid is None:
        what = (
            "missing"
            if raw is None
            else f"not a{'n' if id_spec.type == 'integer' else ''} {id_spec.type} but {type(raw).__name__}"
        )
        raise SourceError(ErrorClass.POISON, f"record fails the schema: {id_spec.path}: {what}")
    for name in required:
        if select(body, name, None) is None:
            missing = [name for name in required if select(body, name, None) is None]
            raise SourceError(ErrorClass.POISON, f"record lacks field(s): {', '.join(missing)}")
    if expected_id is not None and rid != expected_id:
        raise SourceError(ErrorClass.POISON, f"record id {rid!r} is not {expected_id!r}")
    return body
