"""Every setting of the code location, read from the environment and checked at load.

A bad value stops the code location from loading with a message that names the variable; no
setting is required, so the pipeline runs with no environment at all (embedded sample API,
SQLite warehouse).
"""

from __future__ import annotations

from datetime import date, time
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CsvList = Annotated[list[str], NoDecode]


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # The source API (unset URL: the embedded sample API).
    source_api_url: str | None = None
    source_api_token: SecretStr | None = None
    source_api_proxy_url: str | None = None
    source_probe_strategy: Literal["projected", "conditional", "bulk"] = "projected"
    source_probe_fields: CsvList = ["id", "version", "updated_at"]
    source_fingerprint_fields: CsvList = ["version"]
    source_item_path: str = "/items/{id}"
    source_detail_path: str = "/items/{id}/details"
    source_items_path: str = "/items"
    source_connect_timeout: float = Field(5.0, gt=0)
    source_read_timeout: float = Field(30.0, gt=0)
    source_max_concurrency: int = Field(16, ge=1, le=1000)
    source_min_concurrency: int = Field(2, ge=1, le=1000)
    source_rate_limit: float = Field(0.0, ge=0)
    source_rate_limiter_url: str | None = None
    source_rate_limiter_key: str | None = None
    source_max_attempts: int = Field(4, ge=1, le=20)
    source_breaker_failure_ratio: float = Field(0.5, gt=0, le=1)
    source_breaker_min_calls: int = Field(20, ge=1)
    source_breaker_cooldown: float = Field(30.0, ge=0)
    source_breaker_hold: float = Field(60.0, ge=0)

    # The embedded sample API (used only when SOURCE_API_URL is unset).
    sample_api_resources: int = Field(30_000, ge=0)
    sample_api_change_rate: float = Field(0.2, ge=0, le=1)
    sample_api_seed: int = 7

    # The warehouse (unset: a SQLite file under .data/).
    warehouse_url: str = "sqlite:///.data/warehouse.db"

    # The sync.
    pipeline_start_date: date = date(2026, 1, 1)
    pipeline_timezone: str = "UTC"
    sync_batch_size: int = Field(100, ge=1, le=10_000)
    sync_batches_per_step: int = Field(50, ge=1)
    sync_batch_parallelism: int = Field(4, ge=1, le=64)
    sync_claim_lease_seconds: float = Field(60.0, ge=1)
    sync_executor: Literal["in_process", "multiprocess", "celery", "k8s"] = "in_process"
    # SYNC_EXECUTOR=celery: steps go to Celery workers (``celery -A pipelines.workers worker``).
    sync_celery_broker_url: str = "redis://127.0.0.1:6379/1"
    sync_celery_backend_url: str | None = None  # unset: the broker's Redis
    sync_celery_visibility_timeout: float = Field(3600.0, ge=10)
    # SYNC_EXECUTOR=k8s: a Kubernetes Job per step (dagster-k8s, in a cluster).
    sync_k8s_max_concurrent: int = Field(4, ge=1, le=1000)
    watchlist_csv: str | None = None

    # Operations: schedule, alerts, cost.
    schedule_hour: int = Field(1, ge=0, le=23)
    schedule_minute: int = Field(0, ge=0, le=59)
    completion_deadline: time = time(6, 0)
    completion_min_ratio: float = Field(250 / 300, gt=0, le=1)
    completion_lookback_days: int = Field(2, ge=1, le=31)
    alert_webhook_url: str | None = None
    dagster_webserver_url: str = "http://127.0.0.1:3000"
    cost_per_1000_requests: float = Field(1.0, ge=0)

    # The failure model.
    retry_budget_days: int = Field(3, ge=0, le=365)
    dead_letter_max_rate: float = Field(0.02, ge=0, le=1)

    @field_validator("source_probe_fields", "source_fingerprint_fields", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not value:
            raise ValueError("must name at least one field")
        return value

    @field_validator("pipeline_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("warehouse_url")
    @classmethod
    def _supported_warehouse(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// SQLAlchemy URL")
        return value

    @field_validator("source_rate_limiter_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("sync_celery_broker_url")
    @classmethod
    def _celery_broker(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "amqp://", "pyamqp://")):
            raise ValueError("must be a redis://, rediss://, amqp:// or pyamqp:// URL")
        return value

    @field_validator("sync_celery_backend_url")
    @classmethod
    def _celery_backend(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "rpc://", "db+postgresql")):
            raise ValueError("must be a redis://, rediss://, rpc:// or db+postgresql:// URL")
        return value or None

    @model_validator(mode="after")
    def _concurrency_bounds(self) -> Settings:
        if self.source_min_concurrency > self.source_max_concurrency:
            raise ValueError(
                f"SOURCE_MIN_CONCURRENCY ({self.source_min_concurrency}) exceeds "
                f"SOURCE_MAX_CONCURRENCY ({self.source_max_concurrency})"
            )
        return self

    @field_validator("source_item_path", "source_detail_path")
    @classmethod
    def _has_id_placeholder(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError("must contain the {id} placeholder")
        return value


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The settings of this process; raises SettingsError naming every bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"invalid setting(s) in the environment: {problems}") from None
