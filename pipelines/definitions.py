"""The code location: ``dagster dev -m pipelines.definitions`` (or workspace.yaml)."""

from __future__ import annotations

import os
from typing import Any

from dagster import Definitions, EnvVar

from pipelines.core.sync_batch import ProbeStrategy
from pipelines.settings import Settings, load_settings
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.executors import executor_for
from pipelines.sync.io_manager import WarehouseIOManager
from pipelines.sync.jobs import daily_sync_job
from pipelines.sync.replay import replay_dead_letters
from pipelines.sync.resources import SourceApiResource, WarehouseResource
from pipelines.sync.schedules import daily_sync_schedule
from pipelines.sync.sensors import completion_sensor, run_failure_alert_sensor
from pipelines.sync.synced_resources import synced_resources


def from_env(name: str, value: Any) -> Any:
    """``EnvVar(name)`` when the variable is set: Dagster then keeps only its name in run
    snapshots and shows only its name in the UI. Every setting that may carry a credential (a
    token, a URL with a password) reaches Dagster this way; a default (no secret) as itself."""
    if value is None:
        return None
    key = next((k for k in os.environ if k.upper() == name), None)
    return EnvVar(key) if key is not None else value


def build_resources(settings: Settings) -> dict[str, object]:
    """Resources as the environment configures them (secrets stay EnvVar, so never displayed)."""
    warehouse_url = from_env("WAREHOUSE_URL", settings.warehouse_url)
    return {
        "source_api": SourceApiResource(
            declaration_file=settings.declaration_file(),
            base_url=from_env("SOURCE_API_URL", settings.source_api_url),
            token=from_env("SOURCE_API_TOKEN", settings.source_api_token),
            proxy_url=from_env("SOURCE_API_PROXY_URL", settings.source_api_proxy_url),
            probe_strategy=ProbeStrategy(settings.source_probe_strategy),
            probe_fields=settings.source_probe_fields,
            fingerprint_fields=settings.source_fingerprint_fields,
            item_path=settings.source_item_path,
            detail_path=settings.source_detail_path,
            items_path=settings.source_items_path,
            connect_timeout=settings.source_connect_timeout,
            read_timeout=settings.source_read_timeout,
            request_deadline=settings.source_request_deadline,
            max_response_bytes=settings.source_max_response_bytes,
            max_concurrency=settings.source_max_concurrency,
            min_concurrency=settings.source_min_concurrency,
            rate_limit=settings.source_rate_limit,
            rate_limiter_url=from_env("SOURCE_RATE_LIMITER_URL", settings.source_rate_limiter_url),
            rate_limiter_key=settings.source_rate_limiter_key,
            max_attempts=settings.source_max_attempts,
            breaker_failure_ratio=settings.source_breaker_failure_ratio,
            breaker_min_calls=settings.source_breaker_min_calls,
            breaker_cooldown=settings.source_breaker_cooldown,
            breaker_hold=settings.source_breaker_hold,
            sample_resources=settings.sample_api_resources,
            sample_change_rate=settings.sample_api_change_rate,
            sample_seed=settings.sample_api_seed,
            cost_per_1000_requests=settings.cost_per_1000_requests,
        ),
        "warehouse": WarehouseResource(url=warehouse_url),
        # what a step hands the next goes through the warehouse: steps may run on any worker
        "io_manager": WarehouseIOManager(url=warehouse_url),
    }


defs = Definitions(
    assets=[watchlist, retry_queue, job_set, synced_resources, dead_letter],
    asset_checks=sync_checks,
    jobs=[daily_sync_job, replay_dead_letters],
    schedules=[daily_sync_schedule],
    sensors=[completion_sensor, run_failure_alert_sensor],
    resources=build_resources(load_settings()),
    executor=executor_for(load_settings()),
)
