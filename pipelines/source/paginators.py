"""How a listing pages: small objects that read one page and say where the next one is. Pure.

The model is dlt's ``rest_client/paginators.py``: each paginator sees the page it was served
(headers, body, number of records) and answers the next request (parameters to set, or a whole
URL to follow), or None when the listing is done. The client sends; these only decide.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pipelines.core.selectors import MISSING, select
from pipelines.source import declaration as d


@dataclass(frozen=True)
class NextPage:
    """The next request: ``params`` replace the listing's own, or ``url`` is followed as given."""

    params: dict[str, str] | None = None
    url: str | None = None

    def key(self) -> str:
        return self.url or repr(sorted((self.params or {}).items()))


_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def link_target(header: str, rel: str = "next") -> str | None:
    """The URL of ``header``'s link with ``rel`` (RFC 8288; rel may hold several names)."""
    for url, attributes in _LINK.findall(header or ""):
        for attribute in attributes.split(";"):
            name, _, value = attribute.strip().partition("=")
            if name.strip().lower() == "rel" and rel in value.strip().strip('"').split():
                return url.strip()
    return None


class Pager:
    """One listing's walk: ``first()`` then ``after(...)`` per page until None."""

    def __init__(self, spec: d.Paginator, page_size: int, page_size_param: str | None) -> None:
        self.spec, self.page_size, self.page_size_param = spec, page_size, page_size_param
        self.served = 0  # records so far (offset)
        self.page = spec.base_page if isinstance(spec, d.PageNumberPaginator) else 0

    def first(self) -> dict[str, str]:
        """Parameters of the first page's request."""
        params = {self.page_size_param: str(self.page_size)} if self.page_size_param else {}
        spec = self.spec
        if isinstance(spec, d.OffsetPaginator):
            params[spec.offset_param] = "0"
        elif isinstance(spec, d.PageNumberPaginator):
            params[spec.page_param] = str(spec.base_page)
        return params

    def after(
        self, params: dict[str, str], headers: Any, body: Any, records: int, total: int | None = None
    ) -> NextPage | None:
        """The next request after a page of ``records`` items, or None: the listing is done.
        ``total``: the items the API says the listing holds (offset and page number stop there)."""
        spec = self.spec
        if isinstance(spec, d.SinglePagePaginator):
            return None
        if isinstance(spec, d.CursorPaginator):
            cursor = select(body, spec.cursor_path, None)
            if cursor in (None, "", MISSING):
                return None
            return NextPage(params={**params, spec.cursor_param: str(cursor)})
        if isinstance(spec, d.LinkHeaderPaginator):
            target = link_target(headers.get("link", ""), spec.rel)
            return NextPage(url=target) if target else None
        if isinstance(spec, d.NextUrlPaginator):
            target = select(body, spec.next_url_path, None)
            return NextPage(url=str(target)) if target not in (None, "", MISSING) else None
        if records == 0:  # offset and page number: an empty page ends the listing
            return None
        if isinstance(spec, d.OffsetPaginator):
            self.served += records
            if total is None and spec.total_path:
                total = (
                    _int(select(body, spec.total_path, None))
                    if select(body, spec.total_path, None) is not None
                    else None
                )
            if (total is not None and self.served >= total) or (total is None and records < self.page_size):
                return None
            return NextPage(params={**params, spec.offset_param: str(self.served)})
        assert isinstance(spec, d.PageNumberPaginator)
        self.page += 1
        pages = select(body, spec.total_path, None) if spec.total_path else None
        if pages is not None:
            last: int | None = spec.base_page + _int(pages) - 1
        elif total is not None:  # the items the API states, in pages of the size asked for
            last = spec.base_page + math.ceil(total / self.page_size) - 1
        else:
            last = None
        if (last is not None and self.page > last) or (last is None and records < self.page_size):
            return None
        return NextPage(params={**params, spec.page_param: str(self.page)})


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"the listing's total is not a number: {str(value)[:40]!r}") from None
