"""What a failed call leaves behind, and reading an answer into records: a ``SourceError`` scrubbed
of every secret the client knows (a reflected token, a password in a URL), its body cut after
scrubbing; the record or list of records at a declared place, anything else poison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from pipelines.core.errors import BODY_EXCERPT, ErrorClass, SourceError
from pipelines.core.redact import Redactor
from pipelines.core.selectors import select
from pipelines.source.declaration import Id
from pipelines.source.records import parse_json, validate_record
from pipelines.source.wire import Answer, Call


def failure(
    redactor: Redactor,
    error_class: ErrorClass,
    message: str,
    call: Call,
    answer: Answer | None = None,
    attempts: int = 1,
    kind: str = "",
) -> SourceError:
    """What the dead letter keeps of a failed call; headers as httpx reads them (names
    lower-cased, a repeated one's values joined)."""
    body = answer.body if answer is not None else b""
    excerpt = redactor.text(body[: BODY_EXCERPT + 4096].decode("utf-8", "replace"))[:BODY_EXCERPT]
    return SourceError(
        error_class=error_class,
        message=redactor.text(message),
        method=call.method,
        url=redactor.url(call.url),
        status=answer.status_code if answer is not None else None,
        request_headers=redactor.headers(httpx.Headers(list(call.headers.items()))),
        headers=redactor.headers(httpx.Headers(list(answer.headers.items()))) if answer is not None else {},
        body_excerpt=excerpt,
        attempts=attempts,
        kind=kind,
    )


def parsed(redactor: Redactor, kind: str, answer: Answer, attempts: int) -> Any:
    """The answer's JSON body; anything else is poison."""
    try:
        return parse_json(answer.body)
    except SourceError as exc:
        raise failure(redactor, exc.error_class, exc.message, answer.call, answer, attempts, kind) from None


def record(
    redactor: Redactor,
    kind: str,
    answer: Answer,
    selector: str,
    id_spec: Id,
    required: Sequence[str],
    rid: str,
    attempts: int,
) -> dict:
    """The record at ``selector``, holding the id asked for and the ``required`` fields."""
    try:
        return validate_record(select(parse_json(answer.body), selector, None), id_spec, required, expected_id=rid)
    except SourceError as exc:
        raise failure(redactor, exc.error_class, exc.message, answer.call, answer, attempts, kind) from None


def records(redactor: Redactor, kind: str, body: Any, selector: str, answer: Answer, attempts: int) -> list:
    """The list of records at ``selector`` of a parsed ``body``; anything else is poison."""
    found = select(body, selector, None)
    if not isinstance(found, list):
        message = f"body fails the schema: no list of records at {selector or 'the top'}"
        raise failure(redactor, ErrorClass.POISON, message, answer.call, answer, attempts, kind)
    return found
