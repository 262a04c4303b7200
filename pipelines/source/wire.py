"""What travels: a request as it is sent (``Call``) and an answer as it came back (``Answer``),
and the one place that turns the client's path, parameters and headers into a ``Call``.

These are plain values, not ``httpx.Request``/``httpx.Response``: building both for every call
parsed each URL three times and cost about a third of the client's CPU per request, more than
aiohttp's whole request (docs/benchmark.md, "Why the code is as it is"). ``Calls`` still follows httpx's
rules to the byte (the base URL's path kept, ``params`` encoded as httpx encodes them, the
client's default headers under the call's own): a path it cannot prove plain, or a URL given
whole (a listing's next page), is built by ``httpx.AsyncClient.build_request`` itself, and a
test holds the fast path equal to httpx's on hostile ids.

An endpoint's calls differ only in their id: a ``Route`` prepares the rest once (the template
split where the id goes, the query encoded, the headers merged, as an immutable multidict that
aiohttp takes as it is), so a call costs a string join.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode

import httpx
from multidict import CIMultiDict, CIMultiDictProxy

from pipelines.core.urls import PLACEHOLDER, id_segment, item_path


@dataclass(slots=True)
class Call:
    """One request: ``url`` absolute and percent-encoded (sent byte for byte), ``headers`` as
    written, in order (read case-insensitively; never changed once built)."""

    method: str
    url: str
    headers: CIMultiDictProxy[str]
    body: bytes | None = None  # a POST's (the OAuth2 token request); the API's calls are GETs


@dataclass(slots=True)
class Answer:
    """What came back for ``call``: the status, the headers (read case-insensitively) and the
    decoded body."""

    call: Call
    status_code: int
    headers: Mapping[str, str]
    body: bytes


# A path made only of characters a URL carries as they are (RFC 3986 pchar and "/"), each "%"
# starting an escape, and no dot segment: httpx would send it unchanged.
_PLAIN_PATH = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_DOT_SEGMENT = re.compile(r"/\.{1,2}(?:/|$)")


@dataclass(frozen=True, slots=True)
class Route:
    """What every call of one endpoint shares: its path template (``{id}`` where the id goes),
    the call's own parameters and headers, and, where the fast path may build it, the URL split
    at the id (``pieces``) and the headers merged with the client's defaults."""

    template: str
    params: Mapping[str, str] | None
    headers: Mapping[str, str] | None
    pieces: tuple[str, ...] | None  # None: httpx builds every call of this route
    merged: CIMultiDictProxy[str]


def _plain_template(template: str) -> bool:
    """A template every id keeps plain: plain itself, and no segment around the id made only of
    dots (an id of ``""`` or a dot-only id's ``%2E`` beside them could spell a dot segment)."""
    slot = "{" + PLACEHOLDER + "}"
    probe = template.replace(slot, "x")
    if not _PLAIN_PATH.fullmatch(probe) or _DOT_SEGMENT.search(probe):
        return False
    return all(
        not (rest := segment.replace(slot, "")) or rest.strip(".") for segment in template.split("/") if slot in segment
    )


@lru_cache(maxsize=256)
def _encoded(params: tuple[tuple[str, str], ...]) -> str:
    """``params`` as httpx encodes them; a probe's projection is the same on every call."""
    return urlencode(params)


class Calls:
    """Builds the client's requests. ``http`` holds the base URL and the default headers (it is
    the httpx client the fast path must agree with)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        base = http.base_url  # its path ends in "/" (httpx's rule), though str() drops a lone "/"
        self._base = None if base.query or base.fragment else str(base).rstrip("/") + "/"
        self._defaults = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in http.headers.raw]

    def route(
        self, template: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> Route:
        """An endpoint's calls, prepared once (see ``item``)."""
        merged = self._headers(headers)
        if self._base is None or not _plain_template(template):
            return Route(template, params, headers, None, merged)
        query = _encoded(tuple(params.items())) if params else ""
        url = self._base + template[1:] + (f"?{query}" if query else "")
        return Route(template, params, headers, tuple(url.split("{" + PLACEHOLDER + "}")), merged)

    def item(self, route: Route, rid: str, headers: Mapping[str, str] | None = None) -> Call:
        """The GET of ``route`` for ``rid`` (one percent-encoded path segment), with ``headers``
        on top of the route's own."""
        if route.pieces is None or headers:
            own = {**(route.headers or {}), **(headers or {})} or None
            return self.build("GET", item_path(route.template, rid), params=route.params, headers=own)
        return Call("GET", id_segment(rid).join(route.pieces), route.merged)

    def build(
        self,
        method: str,
        path: str | httpx.URL,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        query: str | None = None,
    ) -> Call:
        """``path`` under the base URL, with ``params`` (or a ``query`` already encoded) and the
        default headers under ``headers``."""
        if (
            self._base is not None
            and isinstance(path, str)
            and _PLAIN_PATH.fullmatch(path)
            and not _DOT_SEGMENT.search(path)
        ):
            url = self._base + path[1:]
            if query is None and params:
                query = _encoded(tuple(params.items()))
            return Call(method, f"{url}?{query}" if query else url, self._headers(headers))
        if query is not None:
            path = httpx.URL(str(path), query=query.encode("ascii"))
        # params None, never {}: httpx drops the path's own query for an empty dict
        request = self._http.build_request(method, path, params=params or None, headers=headers)
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        return Call(
            method, str(request.url), CIMultiDictProxy(CIMultiDict((k, v) for k, v in raw if k.lower() != "host"))
        )

    def _headers(self, headers: Mapping[str, str] | None) -> CIMultiDictProxy[str]:
        """The defaults, less those the call sets itself, then the call's own (httpx's merge)."""
        if not headers:
            return CIMultiDictProxy(CIMultiDict(self._defaults))
        own = {k.lower() for k in headers}
        kept = [(k, v) for k, v in self._defaults if k.lower() not in own]
        return CIMultiDictProxy(CIMultiDict([*kept, *headers.items()]))
