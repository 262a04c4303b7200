"""Which ids the pipeline can carry: sendable as a URL segment and storable in the warehouse. Pure.

Any text is a valid id (it is percent-encoded into the path), except what no URL, header-free
log line or database column can hold: control characters (a newline, NUL), lone surrogates
(not encodable as UTF-8), the empty string, and more characters than the id columns take.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 200  # the warehouse's id columns (warehouse/schema.py: Id)
# A source's name: its assets' key prefix, its group and its warehouse namespace (a PostgreSQL
# schema, part of a file name), so nothing any of them would need quoted.
SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # whole: match with fullmatch
# Names no source may take: PostgreSQL's own schemas (and every pg_ one, which it reserves), the
# schema a connection uses by default, SQLite's own names.
RESERVED_NAMES = frozenset({"public", "information_schema", "sqlite_master", "sqlite_schema", "sqlite_temp_master"})


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a source's name and warehouse namespace (None: it can)."""
    if not SOURCE_NAME.fullmatch(name):
        return f"must be lower-case letters, digits and _ starting with a letter (at most 40), got {name!r}"
    if name in RESERVED_NAMES or name.startswith(("pg_", "sqlite_")):
        return (
            f"{name!r} is a schema the database keeps for itself (public, information_schema, pg_*): "
            "a source's tables there would mix with others'; name the source otherwise"
        )
    return None


_UNCARRIABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def id_problem(rid: str, id_type: str = "string") -> str | None:
    """What makes ``rid`` unusable, or None when it is fine (``id_type`` integer: digits only)."""
    if not rid:
        return "is empty"
    if len(rid) > MAX_ID_LENGTH:
        return f"is {len(rid)} characters long (at most {MAX_ID_LENGTH})"
    bad = _UNCARRIABLE.search(rid)
    if bad:
        return f"holds the control character {bad.group()!r} at position {bad.start()}"
    if id_type == "integer" and not (rid.isascii() and rid.isdigit()):
        return "is not an integer, and the source's ids are (id.type: integer)"
    return None
