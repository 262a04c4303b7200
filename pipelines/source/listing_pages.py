"""A listing's pages, read: the total a page states, an item the listing cannot use, the date
the server says it served a page at, and a page's identity (a next page already served is a
listing that does not advance)."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from pipelines.core.selectors import select
from pipelines.source.declaration import ListingSpec
from pipelines.source.paginators import PAGERS


def page_key(target: str | httpx.URL, params: dict[str, str]) -> str:
    return f"{target}?{sorted(params.items())!r}"


def stated_total(spec: ListingSpec, parsed: Any, headers: Mapping[str, str]) -> int | None:
    """How many items the API says the listing holds (its body or a header), if it says."""
    path = spec.total_path or PAGERS[spec.paginator.type].items_total_path(spec.paginator)
    value = select(parsed, path, None) if path else None
    if value is None and spec.total_header:
        value = headers.get(spec.total_header)
    if value is None or isinstance(value, bool):
        return None
    try:
        total = int(str(value).strip())
    except ValueError:
        return None  # a total that is no number states nothing
    return total if total >= 0 else None


def refused_item(item: Any, path: str, id_type: str) -> tuple[str, str]:
    """How a listing item without a usable id is named in the account: its id value as served
    (cut short), and what is wrong with it."""
    if not isinstance(item, dict):
        return repr(item)[:80], f"is not an object but {type(item).__name__}"
    value = select(item, path, None)
    shown = repr(value)[:80]
    if value is None:
        return repr(item)[:80], f"has no id at {path or 'the top'}"
    return shown, f"is not a{'n' if id_type == 'integer' else ''} {id_type} id (at {path}: {type(value).__name__})"


def http_date(value: str | None) -> float | None:
    """An HTTP date (a ``Date`` header) as epoch seconds, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
