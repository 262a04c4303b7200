"""A source's older flat settings (``SOURCE_MAX_CONCURRENCY=8``, a resource's ``max_concurrency``)
and where each lives in a source declaration: the one table that turns them into a declaration
of the API of docs/source-api.md. Only the settings given go in: every default is the
declaration schema's (docs/sources.md), written nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from pipelines.source.declaration import Rate, SourceDeclaration, declare

FLAT_KEYS: dict[str, tuple[str, ...]] = {
    "probe_strategy": ("probe.strategy",),
    "probe_fields": ("probe.fields",),
    "fingerprint_fields": ("fingerprint",),
    "item_path": ("probe.path",),
    "detail_path": ("detail.path",),
    "items_path": ("bulk_probe.path", "listing.path"),
    "listing_page_size": ("listing.page_size",),
    "connect_timeout": ("client.timeouts.connect",),
    "read_timeout": ("client.timeouts.read",),
    "request_deadline": ("client.timeouts.deadline",),
    "max_response_bytes": ("client.max_response_bytes",),
    "max_attempts": ("client.retries.max_attempts",),
    "backoff_initial": ("client.retries.backoff_initial",),
    "backoff_max": ("client.retries.backoff_max",),
    "breaker_failure_ratio": ("client.breaker.failure_ratio",),
    "breaker_min_calls": ("client.breaker.min_calls",),
    "breaker_cooldown": ("client.breaker.cooldown",),
    "breaker_hold": ("client.breaker.hold",),
    "max_concurrency": ("rate.max_concurrency",),
    "min_concurrency": ("rate.min_concurrency",),
    "rate_limit": ("rate.requests_per_second",),
    "rate_limiter_key": ("rate.budget",),
    "max_throttle_wait": ("errors.max_throttle_wait",),
    "max_throttle_attempts": ("errors.max_throttle_attempts",),
    "min_throttle_wait": ("errors.min_throttle_wait",),
    "sample_resources": ("client.sample.resources",),
    "sample_change_rate": ("client.sample.change_rate",),
    "sample_seed": ("client.sample.seed",),
    "cost_per_1000_requests": ("cost.probe", "cost.bulk_probe", "cost.detail", "cost.listing"),
}
TOKEN_VARIABLE = "SOURCE_API_TOKEN"


def flat_changes(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The declaration's dotted keys for the flat settings given (None: not given)."""
    unknown = sorted(set(flat) - set(FLAT_KEYS))
    if unknown:
        raise KeyError(f"not a flat source setting: {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    for name, value in flat.items():
        if value is None:
            continue
        for key in FLAT_KEYS[name]:
            changes[key] = value.value if isinstance(value, Enum) else value
    return changes


def declaration_from_flat(base_url: str | None, flat: Mapping[str, Any], name: str = "source") -> SourceDeclaration:
    """The API of docs/source-api.md at ``base_url`` (None: the embedded sample), a bearer token
    from SOURCE_API_TOKEN, and the flat settings given."""
    changes = {"client.auth": {"type": "bearer", "token_env": TOKEN_VARIABLE}, **flat_changes(flat)}
    fingerprint = changes.get("fingerprint", SourceDeclaration.model_fields["fingerprint"].default)
    changes["detail.required"] = ["id", *fingerprint]  # a detail without them is poison
    if "rate.max_concurrency" in changes:  # the floor never above the cap it was not told about
        floor = changes.get("rate.min_concurrency", Rate.model_fields["min_concurrency"].default)
        changes["rate.min_concurrency"] = min(floor, changes["rate.max_concurrency"])
    return declare(base_url, changes, name)
