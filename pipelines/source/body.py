"""Reading a response body with a cap on its size, counted after decompression.

httpx decompresses a whole network chunk at once, so a small gzip bomb becomes hundreds of
megabytes before anyone can count them. Here the raw bytes are decompressed by zlib with a
``max_length``, so no more than the cap (plus one byte) is ever produced.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping

import httpx

ENCODINGS = "gzip, deflate"  # the Accept-Encoding the client sends: what this module decodes


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"body larger than {limit:,} bytes (at least {size:,} after decompression)")


class UnsupportedEncoding(Exception):
    pass


class _Identity:
    def feed(self, data: bytes, room: int) -> bytes:
        return data

    def flush(self, room: int) -> bytes:
        return b""


class _Zlib:
    """gzip (``wbits`` 31) or deflate, zlib-wrapped or raw (decided on the first bytes)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._d: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None

    def feed(self, data: bytes, room: int) -> bytes:
        if self._d is None:  # deflate: zlib-wrapped per the RFC, raw in practice; try both
            self._d = zlib.decompressobj()
            try:
                return self._d.decompress(data, max(room, 0) + 1)
            except zlib.error:
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            # One byte past the room at most: output held back past max_length is never made.
            return self._d.decompress(data, max(room, 0) + 1)
        except zlib.error as exc:
            raise UnsupportedEncoding(f"corrupt {'gzip' if self._gzip else 'deflate'} body: {exc}") from None

    def flush(self, room: int) -> bytes:
        # Every feed either consumed its input whole (less output than max_length) or went
        # over the cap and ended the read, so nothing large can be pending here.
        return self._d.flush() if self._d is not None else b""


_IDENTITY = _Identity()  # keeps no state: one for every plain body


def _decoder(content_encoding: str | None) -> _Identity | _Zlib:
    if not content_encoding:
        return _IDENTITY
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return _IDENTITY
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedEncoding(f"unsupported Content-Encoding {content_encoding!r} (asked for {ENCODINGS})")
    return _Zlib(gzip=codings[0] != "deflate")


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The decoded body of a streamed response; BodyTooLarge past ``limit`` bytes."""
    return await read_chunks(response.headers, response.aiter_raw(), limit)


async def read_chunks(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The decoded body from its raw (still encoded) chunks, as ``headers`` describe them."""
    declared = _declared_length(headers)
    if declared is not None and declared > limit and "content-encoding" not in headers:
        raise BodyTooLarge(declared, limit)
    decoder = _decoder(headers.get("content-encoding"))
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        out = decoder.feed(chunk, limit - size)
        size += len(out)
        if size > limit:
            raise BodyTooLarge(size, limit)
        parts.append(out)
    return _finish(decoder, parts, size, limit)


def within(headers: Mapping[str, str], limit: int) -> bool:
    """True when the raw body is declared (``Content-Length``) to be at most ``limit`` bytes: it
    can be read whole, then decoded by ``decode_whole``."""
    declared = _declared_length(headers)
    return declared is not None and declared <= limit


def _declared_length(headers: Mapping[str, str]) -> int | None:
    declared = headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


def decode_whole(headers: Mapping[str, str], raw: bytes, limit: int) -> bytes:
    """The decoded body from its raw bytes read whole (at most ``limit`` of them, ``within``):
    decompressed under the same cap as ``read_chunks``."""
    decoder = _decoder(headers.get("content-encoding"))
    if isinstance(decoder, _Identity):
        if len(raw) > limit:
            raise BodyTooLarge(len(raw), limit)
        return raw
    out = decoder.feed(raw, limit)
    if len(out) > limit:
        raise BodyTooLarge(len(out), limit)
    return _finish(decoder, [out], len(out), limit)


def _finish(decoder: _Identity | _Zlib, parts: list[bytes], size: int, limit: int) -> bytes:
    tail = decoder.flush(limit - size)
    size += len(tail)
    if size > limit:
        raise BodyTooLarge(size, limit)
    parts.append(tail)
    return b"".join(parts)
