"""What an answer is worth: a usable one, or a failure of which class; and how long a 429 asks
to wait. No client state here: the client asks, these functions answer."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx

from pipelines.core.errors import ErrorClass, classify_status
from pipelines.core.urls import strip_userinfo
from pipelines.source.declaration import Conditional, Errors
from pipelines.source.wire import Answer

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


def throttle_wait(headers: Mapping[str, str], errors: Errors) -> float:
    """How long a throttled answer asks to wait: its Retry-After (as the source names it), else
    its reset header (epoch seconds when the budget refills), never less than the floor."""
    floor = errors.min_throttle_wait
    value = headers.get(errors.retry_after_header)
    if not value and errors.reset_header and (reset := headers.get(errors.reset_header)):
        try:
            return max(floor, float(reset) - time.time())
        except ValueError:
            pass
    return retry_after_seconds(value, floor=floor)


def usable_statuses(conditional: Conditional | None, errors: Errors) -> frozenset[int]:
    """The statuses ``judge`` finds usable whatever else the answer holds (its headers, its body,
    whether it was conditional): every 2xx the source declares neither a failure nor its
    not-modified answer. The client judges every other answer in full."""
    not_modified = conditional.not_modified_status if conditional is not None else None
    return frozenset(
        status
        for status in range(200, 300)
        if status != not_modified
        and classify_status(status, errors.throttle, errors.transient, errors.gone, errors.auth) is None
    )


def judge(
    answer: Answer, conditional: Conditional | None, sent_conditional: bool, errors: Errors
) -> tuple[ErrorClass | None, str]:
    """The class of an answer (None: a usable one) and, for a failure, what is wrong with it."""
    status = answer.status_code
    if conditional is not None and status == conditional.not_modified_status:
        if not sent_conditional:
            return (
                ErrorClass.POISON,
                f"HTTP {status} to a request that sent no {conditional.request_header}: not a valid answer",
            )
        if answer.body:
            return ErrorClass.POISON, f"HTTP {status} with a body: not a valid answer"
        return None, ""
    if status == 304:
        return ErrorClass.POISON, "HTTP 304 to a request that sent no If-None-Match: not a valid answer"
    error_class = classify_status(status, errors.throttle, errors.transient, errors.gone, errors.auth)
    if error_class is ErrorClass.PERMANENT and 300 <= status < 400:
        where = answer.headers.get("location", "")
        return error_class, f"HTTP {status}: redirects are not followed (to {strip_userinfo(where)[:200]!r})"
    return error_class, f"HTTP {status}" if error_class is not None else ""
