"""How to reach and speak to the API: one frozen value object, handed to the client whole."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientSettings:
    """How to reach and speak to the API. Paths and parameter names adapt to other APIs."""

    base_url: str
    token: str | None = None
    proxy_url: str | None = None
    item_path: str = "/items/{id}"
    detail_path: str = "/items/{id}/details"
    items_path: str = "/items"
    fields_param: str = "fields"
    ids_param: str = "ids"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    request_deadline: float = 60.0  # a whole attempt, body included: a dripping server cannot stall it
    max_response_bytes: int = 8 * 1024 * 1024  # after decompression
    max_concurrency: int = 16  # the most requests in flight; latency may lower the limit
    min_concurrency: int = 2  # the least the limit comes down to
    rate_limit: float = 0.0  # requests/s never exceeded (0: none; 429s find the API's rate)
    rate_limiter_url: str | None = None  # redis://...: one rate for every client naming it
    rate_limiter_key: str | None = None  # the shared budget's name (default: from base_url)
    max_attempts: int = 4
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    max_throttle_wait: float = 600.0  # seconds of 429s one call waits out before it counts as transient
    max_throttle_attempts: int = 20  # ... and 429s in a row (a Retry-After of 0 must not loop forever)
    min_throttle_wait: float = 0.5  # the floor of a Retry-After (0, negative, NaN or a past date)
    bulk_size: int = 100
    breaker_window: int = 50
    breaker_min_calls: int = 20
    breaker_failure_ratio: float = 0.5
    breaker_cooldown: float = 30.0
    breaker_hold: float = 60.0
