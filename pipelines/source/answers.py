"""What an answer is worth: a usable one, or a failure of which class; and how long a 429 asks
to wait. No client state here: the client asks, these functions answer."""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

import httpx

from pipelines.source.errors import ErrorClass, classify_status
from pipelines.source.urls import strip_userinfo

# Transport errors raised before a byte reached the API: not billable.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError, httpx.UnsupportedProtocol)


def retry_after_seconds(value: str | None, default: float = 1.0, floor: float = 0.5) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Never less than ``floor``: a 0, a negative number, NaN or a date in the past would have a
    client call again at once, for ever. Garbage or NaN means ``default``; infinity stays
    infinite (the caller's bound on throttled seconds turns it into a failure, never a sleep).
    """
    if not value:
        return max(floor, default)
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            seconds = default
    if math.isnan(seconds):
        seconds = default
    return max(floor, seconds)


def judge(response: httpx.Response, body: bytes, sent_headers: dict | None) -> tuple[ErrorClass | None, str]:
    """The class of an answer (None: a usable one) and, for a failure, what is wrong with it."""
    status = response.status_code
    if status == 304:
        if not (sent_headers and "If-None-Match" in sent_headers):
            return ErrorClass.POISON, "HTTP 304 to a request that sent no If-None-Match: not a valid answer"
        if body:
            return ErrorClass.POISON, "HTTP 304 with a body: not a valid answer"
        return None, ""
    error_class = classify_status(status)
    if error_class is ErrorClass.PERMANENT and 300 <= status < 400:
        where = response.headers.get("location", "")
        return error_class, f"HTTP {status}: redirects are not followed (to {strip_userinfo(where)[:200]!r})"
    return error_class, f"HTTP {status}"
