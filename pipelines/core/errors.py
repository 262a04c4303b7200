"""What an answer of the source API means to the pipeline (docs/source-api.md, "Errors").

Two kinds of failure, kept apart on purpose:

* ``SourceError``: one resource's call failed. It is routed to its tier (retry queue, dead
  letter, gone) and never sinks the batch.
* ``ApiFailure``: the API (or its configuration) failed as a whole: a credential refused
  (401/403), every sub-job failing the same way, a listing that loops. Treating it per resource
  would quarantine the whole watchlist, so it stops the run instead, writes nothing of the batch
  in flight and names the setting to look at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})
AUTH_STATUSES = frozenset({401, 403})
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token"}
)
BODY_EXCERPT = 500


class ErrorClass(StrEnum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    GONE = "gone"
    PERMANENT = "permanent"
    POISON = "poison"
    CIRCUIT_OPEN = "circuit_open"  # never sent: the breaker held it
    AUTH = "auth"  # 401/403: the credential, not the resource (an ApiFailure, never a sub-job's outcome)
    INVALID_ID = "invalid_id"  # an id that cannot be sent or stored (control characters, too long)
    SPEND_CEILING = "spend_ceiling"  # never sent: the day's spending ceiling is reached
    DEFERRED = "deferred"  # never sent: the API throttles the client past what it will wait for


def classify_status(
    status: int,
    throttle: frozenset[int] = frozenset({429}),
    transient: frozenset[int] = TRANSIENT_STATUSES,
    gone: frozenset[int] = GONE_STATUSES,
    auth: frozenset[int] = AUTH_STATUSES,
) -> ErrorClass | None:
    """The class of an HTTP status, or None for a success (2xx, 304); the sets are the source's
    declaration (``errors``), the defaults docs/source-api.md's."""
    if status in throttle:
        return ErrorClass.THROTTLED
    if status in transient:
        return ErrorClass.TRANSIENT
    if status in gone:
        return ErrorClass.GONE
    if status in auth:
        return ErrorClass.AUTH
    if 300 <= status < 400 and status != 304:
        return ErrorClass.PERMANENT  # redirects are not followed: point the settings at the final URL
    if 400 <= status < 600:
        return ErrorClass.PERMANENT if status < 500 else ErrorClass.TRANSIENT
    return None


def safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers with every secret-bearing one masked."""
    return {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(\.\d+)?")


@dataclass
class SourceError(Exception):
    """A failed call, with what the dead letter needs to show it (no secrets)."""

    error_class: ErrorClass
    message: str
    method: str = "GET"
    url: str = ""
    status: int | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body_excerpt: str = ""
    attempts: int = 1
    kind: str = ""  # the call: probe / bulk_probe / detail / listing ("" when no call was made)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f" ({self.method} {self.url} -> {self.status})" if self.url else ""
        return f"{self.error_class}: {self.message}{where}"

    def signature(self) -> str:
        """What failures "of the same way" share: call, class, status and the message without
        the parts that vary per resource (quoted values, numbers)."""
        return f"{self.kind}|{self.error_class}|{self.status or ''}|{_VARYING.sub('…', self.message)}"


class ApiFailure(Exception):
    """The API or its configuration failed as a whole: stop the run, quarantine nothing.

    ``kind`` is the alert's kind (``auth_failed``, ``systemic_failure``, ``api_contract``);
    ``settings`` the settings most likely at fault; ``evidence`` one failed call, if any.
    """

    def __init__(self, kind: str, message: str, settings: tuple[str, ...] = (), evidence: SourceError | None = None):
        self.kind, self.message, self.settings, self.evidence = kind, message, settings, evidence
        hint = f". Check {', '.join(settings)}" if settings else ""
        super().__init__(f"{message}{hint}")


def auth_failure(evidence: SourceError, token_set: bool, setting: str) -> ApiFailure:
    what = "refused the credential" if token_set else f"requires a credential and {setting} is not set"
    return ApiFailure(
        "auth_failed",
        f"the API {what} (HTTP {evidence.status} on {evidence.kind or 'a call'} {evidence.url}); "
        "the run stops: nothing of the batch in flight is written, no resource is quarantined",
        (setting,),
        evidence,
    )
