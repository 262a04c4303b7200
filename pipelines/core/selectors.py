"""Where things live in a response: dotted paths (``data.id``, ``product``, ``items``). Pure.

A path is what dlt calls a ``data_selector`` and Airbyte a ``DpathExtractor`` field path: names
separated by dots, each one key of an object; a name of digits indexes a list. The empty path is
the body itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

MISSING: Any = object()


@lru_cache(maxsize=1024)  # a source has a handful of paths, read on every record
def split(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")) if path else ()


def select(body: Any, path: str | Sequence[str], default: Any = MISSING) -> Any:
    """The value at ``path`` in ``body``; ``default`` when a step is absent (or MISSING)."""
    if type(body) is dict and type(path) is str and path and "." not in path:
        return body.get(path, default)  # one name (an id, a required field): on every record
    value = body
    for name in split(path) if isinstance(path, str) else path:
        if isinstance(value, dict):
            if name not in value:
                return default
            value = value[name]
        elif isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        else:
            return default
    return value


def id_text(value: Any, id_type: str) -> str | None:
    """An id value as the text the warehouse stores, or None when it is not of ``id_type``
    (a bool is not an integer; an integer id may arrive as digits in a string, as some APIs do)."""
    if id_type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return str(int(value))
        return None
    return value if isinstance(value, str) else None
