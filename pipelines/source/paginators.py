"""How a listing pages: one small class per paginator, each reading the page it was served and
saying where the next one is. Pure.

The model is dlt's ``rest_client/paginators.py`` (``PAGINATOR_MAP``): ``pager_for`` builds the
declared paginator's class from its spec (``PAGERS`` maps each spec's ``type`` to it). A pager
sees the page it was served (headers, body, number of records) and answers the next request
(parameters to set, or a whole URL to follow), or None when the listing is done. The client
sends; these only decide. A new paginator is its spec in ``declaration.py`` (its keys), a class
here, and its entry in ``PAGERS``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

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

    # Pages addressed by position (an offset, a page number): an item that moves while they are
    # walked can be skipped or served twice, so the listing's account checks its total.
    by_position: ClassVar[bool] = False

    def __init__(self, spec: Any, page_size: int, page_size_param: str | None) -> None:
        self.spec, self.page_size, self.page_size_param = spec, page_size, page_size_param

    def first(self) -> dict[str, str]:
        """Parameters of the first page's request."""
        return {self.page_size_param: str(self.page_size)} if self.page_size_param else {}

    def after(
        self, params: dict[str, str], headers: Any, body: Any, records: int, total: int | None = None
    ) -> NextPage | None:
        """The next request after a page of ``records`` items, or None: the listing is done.
        ``total``: the items the API says the listing holds (the positional pagers stop there)."""
        raise NotImplementedError

    @classmethod
    def items_total_path(cls, spec: Any) -> str | None:
        """Where a page's body states how many items the listing holds, if this paginator says."""
        return None


class SinglePagePager(Pager):
    def after(self, params, headers, body, records, total=None) -> NextPage | None:
        return None


class CursorPager(Pager):
    spec: d.CursorPaginator

    def after(self, params, headers, body, records, total=None) -> NextPage | None:
        cursor = select(body, self.spec.cursor_path, None)
        if cursor in (None, "", MISSING):
            return None
        return NextPage(params={**params, self.spec.cursor_param: str(cursor)})


class HeaderCursorPager(Pager):
    spec: d.HeaderCursorPaginator

    def after(self, params, headers, body, records, total=None) -> NextPage | None:
        cursor = (headers.get(self.spec.cursor_header) or "").strip()
        return NextPage(params={**params, self.spec.cursor_param: cursor}) if cursor else None


class LinkHeaderPager(Pager):
    spec: d.LinkHeaderPaginator

    def after(self, params, headers, body, records, total=None) -> NextPage | None:
        target = link_target(headers.get("link", ""), self.spec.rel)
        return NextPage(url=target) if target else None


class NextUrlPager(Pager):
    spec: d.NextUrlPaginator

    def after(self, params, headers, body, records, total=None) -> NextPage | None:
        target = select(body, self.spec.next_url_path, None)
        return NextPage(url=str(target)) if target not in (None, "", MISSING) else None


class OffsetPager(Pager):
    spec: d.OffsetPaginator
    by_position = True

    def __init__(self, spec: d.OffsetPaginator, page_size: int, page_size_param: str | None) -> None:
        super().__init__(spec, page_size, page_size_param)
        self.served = 0  # records so far: the next page's offset

    def first(self) -> dict[str, str]:
        return {**super().first(), self.spec.offset_param: "0"}

    def after(self, params, headers, body, records, total=None) -> NextPage | None:
        if records == 0:  # an empty page ends the listing
            return None
        self.served += records
        if total is None and self.spec.total_path:
            stated = select(body, self.spec.total_path, None)
            total = _int(stated) if stated is not None else None
        if (total is not None and self.served >= total) or (total is None and records < self.page_size):
            return None
        return NextPage(params={**params, self.spec.offset_param: str(self.served)})

    @classmethod
    def items_total_path(cls, spec: d.OffsetPaginator) -> str | None:
        return spec.total_path


class PageNumberPager(Pager):
    spec: d.PageNumberPaginator
    by_position = True

    def __init__(self, spec: d.PageNumberPaginator, page_size: int, page_size_param: str | None) -> None:
        super().__init__(spec, page_size, page_size_param)
        self.page = spec.base_page

    def first(self) -> dict[str, str]:
        return {**super().first(), self.spec.page_param: str(self.spec.base_page)}

    def after(self, params, headers, body, records, total=None) -> NextPage | None:
        if records == 0:  # an empty page ends the listing
            return None
        spec = self.spec
        self.page += 1
        pages = select(body, spec.total_path, None) if spec.total_path else None  # its total counts pages
        if pages is not None:
            last: int | None = spec.base_page + _int(pages) - 1
        elif total is not None:  # the items the API states, in pages of the size asked for
            last = spec.base_page + math.ceil(total / self.page_size) - 1
        else:
            last = None
        if (last is not None and self.page > last) or (last is None and records < self.page_size):
            return None
        return NextPage(params={**params, spec.page_param: str(self.page)})


# Each declared paginator's ``type`` and the class that walks it.
PAGERS: dict[str, type[Pager]] = {
    "cursor": CursorPager,
    "link_header": LinkHeaderPager,
    "offset": OffsetPager,
    "page_number": PageNumberPager,
    "next_url": NextUrlPager,
    "single_page": SinglePagePager,
    "header_cursor": HeaderCursorPager,
}


def pager_for(spec: d.Paginator, page_size: int, page_size_param: str | None) -> Pager:
    """A new walk of a listing paged as ``spec`` declares."""
    return PAGERS[spec.type](spec, page_size, page_size_param)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"the listing's total is not a number: {str(value)[:40]!r}") from None
