"""What travels: a request as it is sent (``Call``) and an answer as it came back (``Answer``),
and the one place that turns the client's path, parameters and headers into a ``Call``.

These are plain values, not ``httpx.Request``/``httpx.Response``: measured on this project's
benchmark (``make bench ARGS="--sections ceiling"``, 2026-12-01), building an ``httpx.Request``
and an ``httpx.Response`` for every call parsed each URL three times and cost about a third of
the client's CPU per request, more than aiohttp's whole request. ``Calls`` still follows httpx's
rules to the byte (the base URL's path kept, ``params`` encoded as httpx encodes them, the
client's default headers under the call's own): a path it cannot prove plain, or a URL given
whole (a listing's next page), is built by ``httpx.AsyncClient.build_request`` itself, and a
test holds the fast path equal to httpx's on hostile ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode

import httpx


@dataclass(slots=True)
class Call:
    """One request: ``url`` absolute and percent-encoded (sent byte for byte), ``headers`` as
    written, in order."""

    method: str
    url: str
    headers: list[tuple[str, str]]


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
        return Call(method, str(request.url), [(k, v) for k, v in raw if k.lower() != "host"])

    def _headers(self, headers: Mapping[str, str] | None) -> list[tuple[str, str]]:
        """The defaults, less those the call sets itself, then the call's own (httpx's merge)."""
        if not headers:
            return list(self._defaults)
        own = {k.lower() for k in headers}
        return [(k, v) for k, v in self._defaults if k.lower() not in own] + list(headers.items())
