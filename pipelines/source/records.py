"""Validation of what the API returns: anything that fails here is poison. Where a record and
its id live is the source's declaration; a record is checked directly (see ``validate_record``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pipelines.core.errors import ErrorClass, SourceError
from pipelines.core.selectors import id_text, select
from pipelines.source.declaration import DetailSpec, Embedded, Id


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


def embedded_detail(item: Any, rid: str, detail: DetailSpec, id_spec: Id) -> tuple[Any, str | None]:
    """The detail an item carries (``detail.embedded``), or None and why it cannot be used: it
    is absent, or not of the declared shape, or lacks a required field, or names another id.
    Such a resource makes its own detail call; nothing is taken on trust."""
    embedded = detail.embedded
    if embedded is None or not isinstance(item, dict):
        return None, "not embedded"
    value = select(item, embedded.path, None)
    if value is None:
        return None, f"no detail at {embedded.path or 'the item'}"
    if detail.shape == "list":
        return (
            (value, None) if isinstance(value, list) else (None, f"the detail is not a list but {type(value).__name__}")
        )
    if not isinstance(value, dict):
        return None, f"the detail is not an object but {type(value).__name__}"
    lacking = [name for name in detail.required if select(value, name, None) is None]
    if lacking:
        return None, f"the detail lacks {', '.join(lacking)}"
    own = id_text(select(value, id_spec.path, None), id_spec.type)
    if own is not None and own != rid:
        return None, f"the detail names the id {own!r}"
    return value, None


def without_detail(item: dict, embedded: Embedded | None, fields: Sequence[str]) -> dict:
    """What is kept of an item as its projected fields: the item without the detail it carries
    (the detail is stored as the resource's detail), or only ``fields`` when the item is it."""
    if embedded is None:
        return item
    if not embedded.path:
        return {name: item[name] for name in fields if name in item}
    top = embedded.path.split(".", 1)[0]
    return {k: v for k, v in item.items() if k != top}
