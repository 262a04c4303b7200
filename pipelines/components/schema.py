"""The declaration's JSON schema as ``dg check defs`` validates a ``defs.yaml`` against it, made
precise where pydantic's is vague for a JSON-schema validator: a tagged union (``auth``,
``paginator``) is ``oneOf`` its members, so a wrong ``type`` was "not valid under any of the given
schemas"; an optional section is ``anyOf`` itself or null, so a mistake anywhere inside it was
reported at the section. Rewritten, a wrong tag is "not one of" the tags, and a mistake inside a
section is reported at its own key and line. A date or time is left to the declaration's loader
(YAML reads an unquoted date as no JSON type)."""

from __future__ import annotations

from typing import Any

NULL = {"type": "null"}


def precise(schema: Any) -> Any:
    """``schema`` with each tagged union a check of its tag and then of the tagged member, and
    each "this or null" a check of "this" whenever it is not null."""
    if isinstance(schema, list):
        return [precise(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    node = {key: precise(value) for key, value in schema.items()}
    if node.get("type") == "string" and node.get("format") in ("date", "time"):
        # YAML reads an unquoted 2026-01-01 as a date, which no JSON type is: our loader checks it
        return {k: v for k, v in node.items() if k != "type"}
    tagged = node.get("discriminator")
    if isinstance(tagged, dict) and "oneOf" in node and "mapping" in tagged:
        tag, mapping = tagged["propertyName"], tagged["mapping"]
        rest = {k: v for k, v in node.items() if k not in ("discriminator", "oneOf")}
        return {
            **rest,
            "type": "object",
            "required": [tag],
            "properties": {tag: {"enum": list(mapping)}},
            "allOf": [
                {"if": {"properties": {tag: {"const": name}}, "required": [tag]}, "then": {"$ref": ref}}
                for name, ref in mapping.items()
            ],
        }
    either = node.get("anyOf")
    if isinstance(either, list) and len(either) == 2 and NULL in either:
        (other,) = [member for member in either if member != NULL]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return {**rest, "if": {"not": NULL}, "then": other}
    return node
