"""Every setting of the code location, read from the environment and checked at load.

A bad value stops the code location from loading with a message that names the variable; no
setting is required, so the pipeline runs with no environment at all (embedded sample API,
SQLite warehouse). What can go wrong later is checked here: a value that would overflow (a
lease of 1e12 s), a path placeholder nobody fills, probe fields that cannot make the
fingerprint, a token no HTTP header can carry, an empty SOURCE_API_URL (which would silently
sync the sample API). A variable with one of our prefixes that we do not read is warned about,
with the closest name we do read.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.source.credentials import OUR_PREFIXES
from pipelines.source.flat import FLAT_KEYS
from pipelines.source.redact import header_problem, register, url_secrets
from pipelines.source.urls import PLACEHOLDER, mask_url, placeholders

CsvList = Annotated[list[str], NoDecode]
DAY = 86_400.0
# Prefixes of our variables, and variables with them that belong to someone else.
PREFIXES = ("SOURCE_", *OUR_PREFIXES)
# SOURCE_DATE_EPOCH: reproducible builds; WAREHOUSE_DB: docker/.env's database name for initdb.
FOREIGN = frozenset({"SOURCE_DATE_EPOCH", "WAREHOUSE_DB"})


WAREHOUSE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"})
ONE_STEP = 100_000  # batches per step: every batch of a day (a 10-million-id day has 100,000)


def flat_name(field: str) -> str:
    """A Settings field's flat source setting name (pipelines/source/flat.py), if it is one."""
    return field.removeprefix("source_").replace("sample_api_", "sample_")


SAMPLE_DECLARATION = Path(__file__).parent / "defs" / "sample" / "defs.yaml"


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names it."""


class SettingsWarning(UserWarning):
    """A variable looks like one of ours but is not read (a typo, most likely)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True, allow_inf_nan=False)

    # The source API (unset URL: the embedded sample API; set but empty: an error).
    # A YAML source declaration (docs/sources.md): the API's shape, auth, rate and prices. When
    # set, the SOURCE_* settings below that describe the API must be left unset (one place each).
    source_declaration: str | None = None
    source_api_url: str | None = None
    source_api_token: SecretStr | None = None
    source_api_proxy_url: str | None = None
    source_probe_strategy: Literal["projected", "conditional", "bulk"] = "projected"
    source_probe_fields: CsvList = ["id", "version", "updated_at"]
    source_fingerprint_fields: CsvList = ["version"]
    source_item_path: str = "/items/{id}"
    source_detail_path: str = "/items/{id}/details"
    source_items_path: str = "/items"
    source_connect_timeout: float = Field(5.0, gt=0, le=600)
    source_read_timeout: float = Field(30.0, gt=0, le=3600)
    # A whole attempt, body included (a server dripping a byte a second passes any read timeout).
    source_request_deadline: float = Field(60.0, gt=0, le=3600)
    # The largest body accepted, after decompression (a gzip bomb would otherwise fill memory).
    source_max_response_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=1 << 30)
    source_max_concurrency: int = Field(16, ge=1, le=1000)
    source_min_concurrency: int = Field(2, ge=1, le=1000)
    source_rate_limit: float = Field(0.0, ge=0, le=1_000_000)
    source_rate_limiter_url: str | None = None
    source_rate_limiter_key: str | None = None
    source_max_attempts: int = Field(4, ge=1, le=20)
    source_breaker_failure_ratio: float = Field(0.5, gt=0, le=1)
    source_breaker_min_calls: int = Field(20, ge=1, le=10_000)
    source_breaker_cooldown: float = Field(30.0, ge=0, le=DAY)
    source_breaker_hold: float = Field(60.0, ge=0, le=DAY)

    # The embedded sample API (used only when SOURCE_API_URL is absent).
    sample_api_resources: int = Field(30_000, ge=0, le=100_000_000)
    sample_api_change_rate: float = Field(0.2, ge=0, le=1)
    sample_api_seed: int = 7

    # The warehouse (unset: a SQLite file under .data/).
    warehouse_url: str = "sqlite:///.data/warehouse.db"

    # The sync.
    pipeline_start_date: date = date(2026, 1, 1)
    pipeline_timezone: str = "UTC"
    sync_batch_size: int = Field(100, ge=1, le=10_000)
    sync_batches_per_step: int | None = Field(None, ge=1, le=100_000)  # unset: batches_per_step() decides
    sync_batch_parallelism: int = Field(8, ge=1, le=64)
    sync_event_loop: Literal["uvloop", "asyncio"] = "uvloop"  # the loop the client runs on
    sync_claim_lease_seconds: float = Field(60.0, ge=1, le=DAY)
    # The systemic failure guard: this share of one kind of call failing the same way, over the
    # last SYNC_SYSTEMIC_WINDOW calls or one batch's, stops the run (0: off).
    sync_systemic_failure_ratio: float = Field(0.9, ge=0, le=1)
    sync_systemic_window: int = Field(50, ge=1, le=100_000)
    sync_executor: Literal["in_process", "multiprocess", "celery", "k8s"] = "in_process"
    # SYNC_EXECUTOR=celery: steps go to Celery workers (``celery -A pipelines.workers worker``).
    sync_celery_broker_url: str = "redis://127.0.0.1:6379/1"
    sync_celery_backend_url: str | None = None  # unset: the broker's Redis
    sync_celery_visibility_timeout: float = Field(3600.0, ge=10, le=7 * DAY)
    # SYNC_EXECUTOR=k8s: a Kubernetes Job per step (dagster-k8s, in a cluster).
    sync_k8s_max_concurrent: int = Field(4, ge=1, le=1000)
    watchlist_csv: str | None = None
    # From day 2 on, a listing that only finds ids (the probe is another call) runs beside the
    # sync of the ids already tracked, and the ids it finds new are synced at its end
    # (sync/listing_beside.py); false: the watchlist step lists before the job set is built.
    sync_listing_beside: bool = True

    # Operations: schedule, alerts, cost.
    schedule_hour: int = Field(1, ge=0, le=23)
    schedule_minute: int = Field(0, ge=0, le=59)
    completion_deadline: time = time(6, 0)
    completion_min_ratio: float = Field(250 / 300, gt=0, le=1)
    completion_lookback_days: int = Field(2, ge=1, le=31)
    alert_webhook_url: str | None = None
    dagster_webserver_url: str = "http://127.0.0.1:3000"
    cost_per_1000_requests: float = Field(1.0, ge=0, le=1_000_000)

    # The failure model.
    retry_budget_days: int = Field(3, ge=0, le=365)
    dead_letter_max_rate: float = Field(0.02, ge=0, le=1)

    def batches_per_step(self) -> int:
        """SYNC_BATCHES_PER_STEP, or by executor when unset. In one process the steps run one
        after another, and each boundary costs the rate: the batches in flight drain, the next
        step opens a client and runs its first batch alone (on a rate-bound day, about a second
        a step, seen in the server's requests per second). So in process a day is one step;
        where steps spread over processes or workers, 50 batches each."""
        if self.sync_batches_per_step is not None:
            return self.sync_batches_per_step
        return ONE_STEP if self.sync_executor == "in_process" else 50

    @field_validator("source_probe_fields", "source_fingerprint_fields", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not value:
            raise ValueError("must name at least one field")
        return value

    @field_validator("source_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError(
                "is set but empty: unset it (not empty) to sync the embedded sample API, or give the API's URL"
            )
        if not re.match(r"https?://[^/\s]", value):
            raise ValueError(f"must be an http:// or https:// URL, got {mask_url(value)!r}")
        return value

    @field_validator("source_api_token", mode="before")
    @classmethod
    def _token(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            if not value:
                return None  # an empty line of an env file: no token
            problem = header_problem(value)
            if problem is not None:  # never echo the value: it is a secret
                raise ValueError(problem)
        return value

    @field_validator("source_api_proxy_url", "alert_webhook_url", "source_rate_limiter_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("source_item_path", "source_detail_path", "source_items_path")
    @classmethod
    def _known_placeholders(cls, value: str, info) -> str:
        found = placeholders(value)
        wanted = [] if info.field_name == "source_items_path" else [PLACEHOLDER]
        unknown = [name for name in found if name not in wanted]
        if unknown:
            raise ValueError(
                f"has the placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                + ("a listing path takes none" if not wanted else "the only one filled in is {id}")
            )
        if wanted and PLACEHOLDER not in found:
            raise ValueError("must contain the {id} placeholder")
        if not value.startswith("/"):
            raise ValueError("must start with /")
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
        from sqlalchemy.engine import make_url  # noqa: PLC0415 (only to read the URL)
        from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            url = None
        if url is None or url.drivername not in WAREHOUSE_DRIVERS:
            raise ValueError(
                f"must be a sqlite:///path or postgresql://user@host/db SQLAlchemy URL (drivers: "
                f"{', '.join(sorted(WAREHOUSE_DRIVERS))}), got {mask_url(value)!r}"
            )
        if url.drivername.startswith("sqlite") and not url.database:
            raise ValueError(f"names no SQLite file (sqlite:///path/to/warehouse.db), got {mask_url(value)!r}")
        return value

    @field_validator("watchlist_csv")
    @classmethod
    def _readable_csv(cls, value: str | None) -> str | None:
        if not value:
            return None
        from pipelines.sync.watchlist_source import check_csv  # noqa: PLC0415 (pandas, only when set)

        try:
            check_csv(value)  # an unreadable file stops the code location here, named
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("WATCHLIST_CSV ")) from None
        return value

    @field_validator("source_rate_limiter_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must be a redis://, rediss:// or unix:// URL, got {mask_url(value)!r}")
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

    @field_validator("source_declaration")
    @classmethod
    def _declaration_loads(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from pipelines.source.declaration_file import load_declaration  # noqa: PLC0415 (only when set)

        load_declaration(value)  # a mistake stops the code location here, named by file, line and key
        return value

    @model_validator(mode="after")
    def _declaration_is_the_one_place(self) -> Settings:
        if self.source_declaration is None:
            return self
        described = sorted(
            name.upper()
            for name in DECLARED_SETTINGS
            if name in self.model_fields_set and getattr(self, name) != Settings.model_fields[name].default
        )
        if described:
            raise ValueError(
                f"SOURCE_DECLARATION is set, and so is {', '.join(described)}: the declaration says how the API "
                "is spoken (docs/sources.md); unset these, or move them into it"
            )
        return self

    @model_validator(mode="after")
    def _concurrency_bounds(self) -> Settings:
        if self.source_min_concurrency > self.source_max_concurrency:
            raise ValueError(
                f"SOURCE_MIN_CONCURRENCY ({self.source_min_concurrency}) exceeds "
                f"SOURCE_MAX_CONCURRENCY ({self.source_max_concurrency})"
            )
        return self

    @model_validator(mode="after")
    def _probe_makes_the_fingerprint(self) -> Settings:
        missing = [f for f in ("id", *self.source_fingerprint_fields) if f not in self.source_probe_fields]
        if missing:
            raise ValueError(
                f"SOURCE_PROBE_FIELDS ({','.join(self.source_probe_fields)}) lacks {', '.join(missing)}: the "
                "probe must return the id and every field of SOURCE_FINGERPRINT_FIELDS "
                f"({','.join(self.source_fingerprint_fields)})"
            )
        return self

    def flat_source_settings(self) -> dict[str, Any]:
        """The older flat variables this environment sets, by the flat names of
        pipelines/source/flat.py (SOURCE_MAX_CONCURRENCY: max_concurrency): the ones it leaves
        unset take the declaration's defaults, not these fields'."""
        return {flat_name(field): getattr(self, field) for field in self.model_fields_set if field in FLAT_SETTINGS}

    def configured_by_environment(self) -> bool:
        """The source is the environment's (SOURCE_DECLARATION, or the older SOURCE_ variables),
        not the code location's components."""
        return bool(self.source_declaration) or any(name in self.model_fields_set for name in DECLARED_SETTINGS)

    def declaration_file(self) -> str | None:
        """The source's declaration: SOURCE_DECLARATION; else, unless older SOURCE_… variables
        describe the API (a deployment from before declarations), the shipped sample's."""
        if self.source_declaration:
            return self.source_declaration
        if any(name in self.model_fields_set for name in DECLARED_SETTINGS):
            return None
        return str(SAMPLE_DECLARATION)

    def secret_values(self) -> list[str]:
        """Every credential the settings hold: the token, URL passwords (as written, decoded and
        as a basic-auth header), the webhook URL and its path (Slack's secret is its path)."""
        values = [self.source_api_token.get_secret_value() if self.source_api_token else None]
        for url in (
            self.source_api_url,
            self.source_api_proxy_url,
            self.warehouse_url,
            self.source_rate_limiter_url,
            self.sync_celery_broker_url,
            self.sync_celery_backend_url,
        ):
            values += url_secrets(url)
        if self.alert_webhook_url:
            path = re.sub(r"^[a-z]+://[^/]*", "", self.alert_webhook_url)
            values += [self.alert_webhook_url, path if len(path) >= 16 else None]
        return [v for v in values if v]


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The settings of this process; raises SettingsError naming every bad variable. Their
    credentials are kept out of every log line of the process from here on."""
    warn_unknown_variables(os.environ)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid setting(s) in the environment: {problems}") from None
    register(settings.secret_values())
    return settings


def unknown_variables(environ: dict[str, str] | os._Environ) -> dict[str, str | None]:
    """Variables with one of our prefixes that no setting reads, each with the closest known name."""
    known = [name.upper() for name in Settings.model_fields]
    found = {}
    for name in environ:
        upper = name.upper()
        if upper.startswith(PREFIXES) and upper not in known and upper not in FOREIGN:
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
            found[name] = close[0] if close else None
    return found


def warn_unknown_variables(environ: dict[str, str] | os._Environ) -> None:
    for name, close in sorted(unknown_variables(environ).items()):
        hint = f"; did you mean {close}?" if close else ""
        warnings.warn(f"{name} is set but no setting reads it{hint}", SettingsWarning, stacklevel=3)


# The older variables that describe the API (the flat settings, its URL and token): what a source
# declaration says instead, refused beside SOURCE_DECLARATION; any of them set makes the
# environment's source the code location's one.
FLAT_SETTINGS = frozenset(field for field in Settings.model_fields if flat_name(field) in FLAT_KEYS)
DECLARED_SETTINGS = ("source_api_url", "source_api_token", *sorted(FLAT_SETTINGS))
