"""A hostile HTTP API on a loopback port: every resource exists, and it misbehaves on demand.

It speaks the default API contract (``/items/{id}``, ``/items/{id}/details``, ``/items?ids=``,
``/items?cursor=``) for ANY id, decoding the id from its own raw path segment, and records the
raw request target and headers of every request. Its ``mode`` makes it misbehave the way real
APIs and proxies do: a status for everything, a ``Retry-After`` of 0 / NaN / the past, a body
dripped a byte at a time, a gzip bomb, a 304 nobody asked for, a redirect with a body, a cursor
that never advances, request headers reflected back, NUL characters and kilobyte ETags.

It is a plain threaded ``http.server`` so that every byte and every delay is under the test's
control (a framework would buffer, compress or validate on our behalf).
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Mode:
    status: int | None = None  # every API request answered with this status (e.g. 401, 404)
    retry_after: str | None = None  # every API request answered 429 with this Retry-After
    drip_seconds: float = 0.0  # bodies sent one byte per drip_seconds
    gzip_bomb_mb: int = 0  # detail bodies: this many MB of JSON whitespace, gzipped
    not_modified: bool = False  # probes answered 304, If-None-Match or not
    redirect: bool = False  # every API request answered 302 with a JSON body
    cursor_loop: bool = False  # the listing serves the same next_cursor for ever
    reflect: bool = False  # request headers echoed in the body and as X-Echo-* headers
    status_ids: dict[str, int] = field(default_factory=dict)  # these ids answered with this status
    nul_ids: set[str] = field(default_factory=set)  # these ids' records hold a NUL character
    etag_bytes: int = 0  # probes carry an ETag this long
    garbage_ids: set[str] = field(default_factory=set)  # these ids' details are not JSON (with a NUL)
    version: int = 1
    listing: list[str] = field(default_factory=list)  # what the listing serves
    listing_status: int | None = None  # the listing (only) answered with this status
    listing_delay: float = 0.0  # seconds before each listing page is answered
    # How the listing pages: "cursor" (?cursor=&limit=, next_cursor in the body; "header_cursor":
    # in an X-Next-Cursor header), "offset"
    # (?offset=&limit=) or "link" (?page=&per_page=, a Link header naming the next page).
    listing_style: str = "cursor"
    advancing_cursor: str | None = None  # after the first page: "empty" pages or the "same" page, a new cursor each
    new_ids_for_ever: bool = False  # every page new ids (i0, i1, ...) and a next cursor, for ever
    unstable_order: bool = False  # every page cut from a new shuffle of the listing (an unstable sort)
    relative_links: bool = False  # Link references relative to the page: <?page=2&per_page=100>
    link_needs_page: bool = False  # a Link header only when the request names a page
    total_header: bool = False  # X-Total-Count: the listing's length
    bad_items: dict[int, object] = field(default_factory=dict)  # listing index: the item served instead
    markers: dict[str, str] = field(default_factory=dict)  # an id's updated_at (default: 2026-01-01T00:00:00+00:00)
    honour_filter: str | None = None  # the listing serves only items changed since ?<this>=; None: ignores it
    bulk_twice: dict[str, int] = field(default_factory=dict)  # a bulk answer holds these ids again, this version
    delay: float = 0.0  # seconds before any answer (a slow API)


@dataclass(frozen=True)
class Seen:
    target: str  # the raw request target, as sent
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]  # every header line, in order, repeats kept


class HostileApi:
    def __init__(self) -> None:
        self.mode = Mode()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                with api._lock:
                    api.seen.append(Seen(self.path, dict(self.headers), list(self.headers.items())))
                api._answer(self)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client hanging up mid-drip is the point
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def targets(self) -> list[str]:
        with self._lock:
            return [s.target for s in self.seen]

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()

    # -- answers ----------------------------------------------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        m = self.mode
        time.sleep(m.delay)
        raw_path, _, query = h.path.partition("?")
        params = parse_qs(query)
        headers: dict[str, str] = {}
        if m.reflect:
            headers.update({f"X-Echo-{k}": v for k, v in h.headers.items()})
        if m.status is not None:
            return self._send(h, m.status, {"error": f"HTTP {m.status}", "request_headers": self._echo(h)}, headers)
        if m.retry_after is not None:
            return self._send(h, 429, {"error": "slow down"}, {**headers, "Retry-After": m.retry_after})
        if m.redirect:
            return self._send(h, 302, {"moved": "elsewhere"}, {**headers, "Location": "https://elsewhere.example/x"})
        segments = [unquote(s, errors="replace") for s in raw_path.split("/")[1:]]
        if segments == ["items"] and ("ids" in params or "id" in params):  # ?ids=a,b or ?id=a&id=b
            ids = [i for i in params["ids"][0].split(",") if i] if "ids" in params else params["id"]
            items = [self._record(i) for i in ids]
            items += [{**self._record(i), "version": v} for i, v in m.bulk_twice.items() if i in ids]
            return self._send(h, 200, {"items": items, "missing": []}, headers)
        if segments == ["items"]:
            return self._listing(h, params, headers)
        if len(segments) in (2, 3) and segments[0] == "items" and segments[1] in m.status_ids:
            status = m.status_ids[segments[1]]
            return self._send(h, status, {"error": f"HTTP {status}", "request_headers": self._echo(h)}, headers)
        if len(segments) == 2 and segments[0] == "items":
            return self._probe(h, segments[1], headers)
        if len(segments) == 3 and segments[0] == "items" and segments[2] == "details":
            return self._detail(h, segments[1], headers)
        return self._send(h, 404, {"error": "no such route"}, headers)

    def _probe(self, h, rid: str, headers: dict[str, str]) -> None:
        m = self.mode
        if m.not_modified:
            return self._send_raw(h, 304, b"", {**headers, "ETag": '"1"'})
        if m.etag_bytes:
            headers["ETag"] = '"' + ("e" * (m.etag_bytes - 2)) + '"'
        else:
            headers["ETag"] = f'"{m.version}"'
        body = {"id": rid, "version": m.version, "updated_at": self._marker(rid)}
        if m.reflect:
            body["request_headers"] = self._echo(h)
        self._send(h, 200, body, headers)

    def _detail(self, h, rid: str, headers: dict[str, str]) -> None:
        m = self.mode
        if m.gzip_bomb_mb:
            return self._send_raw(h, 200, gzip_bomb(rid, m.gzip_bomb_mb), {**headers, "Content-Encoding": "gzip"})
        if rid in m.garbage_ids:
            return self._send_raw(h, 200, b"<html>\x00 oops: not JSON \x00</html>", headers)
        body = self._record(rid)
        if m.reflect:
            body["request_headers"] = self._echo(h)
        self._send(h, 200, body, headers)

    def _listing(self, h, params: dict[str, list[str]], headers: dict[str, str]) -> None:
        m = self.mode
        time.sleep(m.listing_delay)
        if m.listing_status is not None:
            return self._send(h, m.listing_status, {"error": f"HTTP {m.listing_status}"}, headers)
        if m.total_header:
            headers["X-Total-Count"] = str(len(m.listing))
        if m.listing_style == "link":
            return self._link_page(h, params, headers)
        limit = int((params.get("limit") or ["500"])[0])
        if m.listing_style == "offset":
            start = int((params.get("offset") or ["0"])[0] or 0)
            items = [self._listing_item(i, rid) for i, rid in self._ordered()[start : start + limit]]
            return self._send(h, 200, {"items": items}, headers)
        if m.honour_filter and m.honour_filter in params:
            since = datetime.fromisoformat(params[m.honour_filter][0])
            listing = [rid for rid in m.listing if datetime.fromisoformat(self._marker(rid)) >= since]
            return self._send(h, 200, {"items": [self._listing_item(0, rid) for rid in listing][:limit]}, headers)
        cursor = (params.get("cursor") or ["0"])[0] or "0"
        if m.new_ids_for_ever:
            start = int(cursor)
            page = [{"id": f"i{n}"} for n in range(start, start + limit)]
            return self._send(h, 200, {"items": page, "next_cursor": str(start + limit)}, headers)
        if m.advancing_cursor and cursor != "0":
            served = [] if m.advancing_cursor == "empty" else [{"id": i} for i in m.listing[:limit]]
            return self._send(h, 200, {"items": served, "next_cursor": str(int(cursor) + 1)}, headers)
        start = int(cursor)
        page = [self._listing_item(start + i, rid) for i, rid in enumerate(m.listing[start : start + limit])]
        nxt: str | None
        if m.cursor_loop:
            nxt = "1"
        elif m.advancing_cursor:
            nxt = str(start + limit)
        else:
            nxt = str(start + limit) if start + limit < len(m.listing) else None
        if m.listing_style == "header_cursor":  # the next cursor in a header, none in the body
            headers.update({"X-Next-Cursor": nxt} if nxt else {})
            return self._send(h, 200, {"items": page}, headers)
        self._send(h, 200, {"items": page, "next_cursor": nxt}, headers)

    def _ordered(self) -> list[tuple[int, str]]:
        listing = list(enumerate(self.mode.listing))
        if self.mode.unstable_order:
            with self._lock:
                random.Random(len(self.seen)).shuffle(listing)  # another order for every request
        return listing

    def _link_page(self, h, params: dict[str, list[str]], headers: dict[str, str]) -> None:
        m = self.mode
        per_page = int((params.get("per_page") or ["100"])[0])
        asked = params.get("page")
        page = int((asked or ["1"])[0])
        start = (page - 1) * per_page
        items = [self._listing_item(start + i, rid) for i, rid in enumerate(m.listing[start : start + per_page])]
        if start + per_page < len(m.listing) and (asked or not m.link_needs_page):
            query = f"?page={page + 1}&per_page={per_page}"
            headers["Link"] = f'<{query if m.relative_links else self.url + "/items" + query}>; rel="next"'
        self._send(h, 200, items, headers)

    def _listing_item(self, index: int, rid: str) -> object:
        item = {"id": rid, "version": self.mode.version, "updated_at": self._marker(rid)}
        return self.mode.bad_items.get(index, item)

    def _marker(self, rid: str) -> str:
        return self.mode.markers.get(rid, "2026-01-01T00:00:00+00:00")

    def _record(self, rid: str) -> dict:
        m = self.mode
        record = {
            "id": rid,
            "version": m.version,
            "updated_at": self._marker(rid),
            "name": f"the resource {rid}",
            "attributes": {"size": len(rid)},
        }
        if rid in m.nul_ids:
            record["name"] = f"a NUL \x00 inside {rid}"
        return record

    @staticmethod
    def _echo(h) -> dict[str, str]:
        return dict(h.headers)

    def _send(self, h, status: int, body: object, headers: dict[str, str]) -> None:
        self._send_raw(h, status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})

    def _send_raw(self, h, status: int, payload: bytes, headers: dict[str, str]) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if not self.mode.drip_seconds:
            h.wfile.write(payload)
            return
        for i in range(len(payload)):  # a byte at a time: each read completes well within any read timeout
            try:
                h.wfile.write(payload[i : i + 1])
                h.wfile.flush()
            except OSError:
                return
            time.sleep(self.mode.drip_seconds)


@functools.cache
def gzip_bomb(rid: str, megabytes: int) -> bytes:
    """A JSON record padded with ``megabytes`` MB of spaces, gzipped (about 1,000 to 1), made a
    megabyte at a time so that the server never holds the inflated body."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(b'{"id": "' + rid.encode() + b'", "pad": "')]
    chunk = b" " * (1 << 20)
    parts += [packer.compress(chunk) for _ in range(megabytes)]
    parts.append(packer.compress(b'"}') + packer.flush())
    return b"".join(parts)


def raw_segment_of(target: str) -> str:
    """The id segment of a request target ``/items/<segment>[/details][?query]``."""
    return urlsplit(target).path.split("/")[2]
