"""Knobs of the sample source API (see docs/source-api.md)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class SampleApiConfig:
    """Everything that decides what the sample API serves and how it misbehaves.

    Rates are shares in [0, 1]. Per-resource faults (``poison_rate``, ``malformed_rate``) are
    decided by the seed, so the same resources misbehave on every call; per-request faults
    (``transient_rate``, ``timeout_rate``) are random draws. Flaky resources (``flaky_rate``,
    chosen by the seed) fail their first k calls with 503, k between 1 and ``flaky_attempts``
    (also by the seed), then answer: faults concentrated on some resources and consecutive
    attempts, as one bad shard or upstream gives them. Their attempts are counted across days.
    """

    seed: int = 7
    resources: int = 30_000
    day: int = 1
    change_rate: float = 0.2
    gone_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit: float = 0.0  # requests per second; 0 means unlimited
    transient_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    malformed_rate: float = 0.0
    poison_rate: float = 0.0
    flaky_rate: float = 0.0
    flaky_attempts: int = 0
    bulk_probe: bool = True
    conditional: bool = True
    token: str | None = None
    # OAuth2 client credentials (POST /oauth/token): when an id is set, the API takes only the
    # bearer tokens it issued, each for ``oauth_token_ttl`` seconds (``oauth_claimed_ttl``: what
    # it tells the client, which a test sets longer to expire a token early)
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = None
    oauth_token_ttl: float = 3600.0
    oauth_claimed_ttl: float | None = None
    description_bytes: int = 2_000
    max_bulk_ids: int = 100
    max_page_size: int = 1_000

    def __post_init__(self) -> None:
        for name in (
            "change_rate",
            "gone_rate",
            "transient_rate",
            "timeout_rate",
            "malformed_rate",
            "poison_rate",
            "flaky_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"sample API setting {name}={value!r} must be between 0 and 1")
        for name in ("resources", "latency_ms", "latency_jitter_ms", "rate_limit", "timeout_seconds", "flaky_attempts"):
            if getattr(self, name) < 0:
                raise ValueError(f"sample API setting {name}={getattr(self, name)!r} must be >= 0")
        if self.day < 0:
            raise ValueError(f"sample API setting day={self.day!r} must be >= 0")

    def updated(self, changes: dict[str, Any]) -> SampleApiConfig:
        """A copy with ``changes`` applied; unknown names are an error that names them."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown sample API setting(s): {', '.join(unknown)}")
        return replace(self, **changes)
