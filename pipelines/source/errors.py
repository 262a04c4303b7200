"""What an answer of the source API means to the pipeline (specs/source-api.md, "Errors")."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
BODY_EXCERPT = 500


class ErrorClass(StrEnum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    GONE = "gone"
    PERMANENT = "permanent"
    POISON = "poison"
    CIRCUIT_OPEN = "circuit_open"  # never sent: the breaker held it


def classify_status(status: int) -> ErrorClass | None:
    """The class of an HTTP status, or None for a success (2xx, 304)."""
    if status == 429:
        return ErrorClass.THROTTLED
    if status in TRANSIENT_STATUSES:
        return ErrorClass.TRANSIENT
    if status in GONE_STATUSES:
        return ErrorClass.GONE
    if 400 <= status < 600:
        return ErrorClass.PERMANENT if status < 500 else ErrorClass.TRANSIENT
    return None


def safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers with every secret-bearing one masked."""
    return {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


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

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f" ({self.method} {self.url} -> {self.status})" if self.url else ""
        return f"{self.error_class}: {self.message}{where}"
