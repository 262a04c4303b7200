"""The deployment's settings, read from the environment and checked at load: the warehouse,
Redis, the executor, and where the one source's declaration is (SOURCE_DECLARATION). How an API
is spoken is its declaration's alone (docs/sources.md), never a variable's.

A bad value stops the code location from loading with a message that names the variable; no
setting is required, so the pipeline runs with no environment at all (embedded sample API,
SQLite warehouse). What can go wrong later is checked here: a value that would overflow (a
lease of 1e12 s), a URL of the wrong kind. A retired flat variable (SOURCE_PROBE_STRATEGY ...) that
no declaration reads stops the load naming the command that writes its declaration; another
variable with one of our prefixes that nothing reads is warned about, with the closest name.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Set
from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.core.redact import register, url_secrets
from pipelines.core.urls import mask_url
from pipelines.source.credentials import OUR_PREFIXES

DAY = 86_400.0
# Prefixes of our variables, and variables with them that belong to someone else.
PREFIXES = ("SOURCE_", *OUR_PREFIXES)
# SOURCE_DATE_EPOCH: reproducible builds; WAREHOUSE_DB: docker/.env's database name for initdb.
FOREIGN = frozenset({"SOURCE_DATE_EPOCH", "WAREHOUSE_DB"})


WAREHOUSE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"})
ONE_STEP = 100_000  # batches per step: every batch of a day (a 10-million-id day has 100,000)


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names it."""


class SettingsWarning(UserWarning):
    """A variable looks like one of ours but is not read (a typo, most likely)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True, allow_inf_nan=False)

    # The one source of a single-source deployment: its YAML declaration (docs/sources.md). Unset:
    # the sources are the components under pipelines/defs/ (the embedded sample's ships there).
    source_declaration: str | None = None
    # Where the shared request rate lives (redis://...): one rate for every step and run; unset,
    # each client keeps its own. How fast to call is the declaration's (rate.requests_per_second).
    source_rate_limiter_url: str | None = None

    # The warehouse (unset: a SQLite file under .data/).
    warehouse_url: str = "sqlite:///.data/warehouse.db"

    # The sync.
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
    # From day 2 on, a listing that only finds ids (the probe is another call) runs beside the
    # sync of the ids already tracked, and the ids it finds new are synced at its end
    # (sync/listing_beside.py); false: the watchlist step lists before the job set is built.
    sync_listing_beside: bool = True
    dagster_webserver_url: str = "http://127.0.0.1:3000"  # the UI, for the links in alerts

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

    def configured_by_environment(self) -> bool:
        """The one source is SOURCE_DECLARATION's, not the code location's components."""
        return bool(self.source_declaration)

    def secret_values(self) -> list[str]:
        """Every credential the settings hold: URL passwords (as written, decoded and as a
        basic-auth header). A source's own credentials (and its alert webhook) are its
        declaration's, registered when they are read."""
        values: list[str | None] = []
        for url in (
            self.warehouse_url,
            self.source_rate_limiter_url,
            self.sync_celery_broker_url,
            self.sync_celery_backend_url,
        ):
            values += url_secrets(url)
        return [v for v in values if v]


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The settings of this process; raises SettingsError naming every bad variable. Their
    credentials are kept out of every log line of the process from here on. The variables
    no setting reads are the code location's to judge, once it knows what its sources read
    (``retired_variables.check_environment``)."""
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


def unknown_variables(
    environ: Mapping[str, str], read_by_sources: Set[str] = frozenset(), ignore: Set[str] = frozenset()
) -> dict[str, str | None]:
    """Variables with one of our prefixes that no setting and no source reads (nor ``ignore``
    names), each with the closest known name."""
    known = [name.upper() for name in Settings.model_fields]
    found = {}
    for name in environ:
        upper = name.upper()
        if upper in FOREIGN or upper in ignore or name in read_by_sources or upper in known:
            continue
        if upper.startswith(PREFIXES):
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
            found[name] = close[0] if close else None
    return found


def warn_unknown_variables(
    environ: Mapping[str, str], read_by_sources: Set[str] = frozenset(), ignore: Set[str] = frozenset()
) -> None:
    for name, close in sorted(unknown_variables(environ, read_by_sources, ignore).items()):
        hint = f"; did you mean {close}?" if close else ""
        warnings.warn(f"{name} is set but no setting reads it{hint}", SettingsWarning, stacklevel=3)
