"""Dagster resources: the source API client factory and the warehouse."""

import dataclasses
import os
import uuid
from contextlib import asynccontextmanager
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar, Failure
from pydantic import Field

from pipelines.core.ceiling import Ceiling, Grant, SpendPolicy
from pipelines.core.urls import strip_userinfo
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines.source.config import Credentials, MissingSecretError, host_of, resolve_base_url, resolve_credentials
from pipelines.source.declaration import SourceDeclaration
from pipelines.source.declaration_file import load_declaration
from pipelines.source.senders import AsgiSender, Sender
from pipelines.source.spend import SpendLog
from pipelines.warehouse.migrate import WarehouseVersionError
from pipelines.warehouse.store import Warehouse, create_warehouse_engine, open_existing

EMBEDDED_URL = "http://sample-api.embedded"
SAMPLE = "sample"


def from_env(name: str, value: Any) -> Any:
    """``EnvVar(name)`` when the variable is set: Dagster then keeps only its name in run
    snapshots and shows only its name in the UI. Every setting that may carry a credential (a
    token, a URL with a password) reaches Dagster this way; a default (no secret) as itself."""
    if value is None:
        return None
    key = next((k for k in os.environ if k.upper() == name), None)
    return EnvVar(key) if key is not None else value


class DeclaredSource(ConfigurableResource):
    """An API as a YAML declaration says to speak it (docs/sources.md). Two kinds, chosen by what
    the declaration says (``declared_source``): ``HttpSource`` (``client.base_url``) and
    ``EmbeddedSample`` (``client.sample``, the demo's API run in process)."""

    declaration_file: str = Field(description="YAML source declaration (docs/sources.md)")
    rate_limiter_url: str | None = Field(
        default=None, description="redis:// URL: one rate shared by every step and run (EnvVar)"
    )

    @property
    def embedded(self) -> bool:
        return self.declaration().embedded

    def declaration(self) -> SourceDeclaration:
        return declaration_of(self.declaration_file)

    def identity(self) -> str:
        """Which source this is, for the warehouse's record of what it holds."""
        if self.embedded:
            return SAMPLE
        return strip_userinfo(self._base_url()).rstrip("/")

    def _base_url(self) -> str:
        return resolve_base_url(self.declaration()) or EMBEDDED_URL

    def rate_budget(self) -> str:
        """The name of the request rate this source's clients share (its host unless declared)."""
        return self.declaration().rate.budget or host_of(self._base_url())

    def watchlist_csv(self) -> str | None:
        """The declaration's watchlist CSV (a relative path read from the declaration's folder)."""
        csv = self.declaration().watchlist_csv
        if csv is None or not self.declaration_file:
            return csv
        return str(Path(self.declaration_file).parent / csv)

    def _credentials(self, source: SourceDeclaration) -> tuple[Credentials, str | None]:
        proxy = os.environ.get(source.client.proxy_url_env) if source.client.proxy_url_env else None
        return resolve_credentials(source), proxy

    def client_settings(self) -> ClientSettings:
        source = self.declaration()
        credentials, proxy = self._credentials(source)
        return ClientSettings(
            base_url=self._base_url(),
            source=source,
            credentials=credentials,
            proxy_url=proxy or None,
            rate_limiter_url=self.rate_limiter_url,
        )

    def sender(self, simulated_day: int) -> Sender | None:
        """What the client sends through: None for HTTP (and the proxy, if declared)."""
        return sample_sender(self.declaration(), simulated_day) if self.embedded else None

    @asynccontextmanager
    async def open(
        self,
        simulated_day: int,
        spend: SpendLog | None = None,
        listing_spend: SpendLog | None = None,
        learned_rate: float | None = None,
    ):
        """A client (writing its calls down in ``spend`` before sending them, the listing's in
        ``listing_spend`` if given; starting from ``learned_rate`` when the declaration names no
        rate); for the embedded sample API, one serving ``simulated_day``."""
        try:
            settings = dataclasses.replace(self.client_settings(), learned_rate=learned_rate)
        except MissingSecretError as exc:  # no retry can set a variable: the run stops here, once
            raise Failure(str(exc), allow_retries=False) from None
        sender = self.sender(simulated_day)
        async with SourceApiClient(settings, transport=sender, spend=spend, listing_spend=listing_spend) as client:
            yield client


class HttpSource(DeclaredSource):
    """A declared API over HTTP: its URL, credentials and proxy read from the variables the
    declaration names, when a run starts."""

    def sender(self, simulated_day: int) -> Sender | None:
        if self.embedded:
            raise ValueError(f"{self.declaration_file} declares client.sample: that is an EmbeddedSample, not HTTP")
        return None


class EmbeddedSample(DeclaredSource):
    """The embedded sample API, in process, serving the partition's simulated day: no URL, no setup."""

    def sender(self, simulated_day: int) -> Sender | None:
        return sample_sender(self.declaration(), simulated_day)


def declared_source(declaration_file: str | Path, rate_limiter_url: Any = None) -> DeclaredSource:
    """The resource a declaration calls for: the embedded sample, or the API over HTTP."""
    kind = EmbeddedSample if declaration_of(str(declaration_file)).embedded else HttpSource
    return kind(declaration_file=str(declaration_file), rate_limiter_url=rate_limiter_url)


def sample_sender(declared: SourceDeclaration, day: int) -> Sender:
    """The embedded sample API serving ``day``, in process. Imported here, only when a source
    declares it: the demo's API is not on the production code's import path."""
    try:
        from pipelines.sample_api import SampleApiConfig, create_app  # noqa: PLC0415
    except ImportError as exc:  # the runtime image leaves the sample out
        raise Failure(
            f"source {declared.name!r} declares client.sample, the embedded sample API, which this installation "
            f"does not have ({exc}): declare the API's client.base_url, or install pipelines[sample] from a checkout",
            allow_retries=False,
        ) from None

    sample = declared.client.sample
    if sample is None:
        raise ValueError(f"source {declared.name!r} declares no client.sample: it is an API over HTTP")
    config = SampleApiConfig(seed=sample.seed, resources=sample.resources, change_rate=sample.change_rate, day=day)
    return AsgiSender(create_app(config))


@lru_cache(maxsize=16)
def declaration_of(path: str) -> SourceDeclaration:
    """A declaration file, read once per process (the component, its resource and the budget
    check all ask for it at load)."""
    return load_declaration(path)


class WarehouseResource(ConfigurableResource):
    """The warehouse database (SQLite file or PostgreSQL), created at its newest revision on first
    use (``warehouse/migrate.py``); each source in its own namespace of it (a PostgreSQL schema,
    a SQLite file beside the URL's)."""

    url: str = Field(default="sqlite:///.data/warehouse.db", description="SQLAlchemy URL")

    def store(self, namespace: str | None = None) -> Warehouse:
        """The namespace's repositories; a warehouse at another revision fails the step at once,
        naming the migration command (a retry would find it the same)."""
        try:
            return _store(self.url, namespace)
        except WarehouseVersionError as exc:
            raise Failure(str(exc), allow_retries=False) from None

    def spend_log(
        self,
        day: date,
        kind: str,
        run_id: str,
        namespace: str | None = None,
        policy: SpendPolicy | None = None,
        price: float = 0.0,
    ) -> SpendLog:
        """Where a client of ``run_id`` is granted its calls before sending them, within the
        day's ceiling that ``policy`` works out (None: no ceiling); ``price``: its dearest call."""
        store, token = self.store(namespace), uuid.uuid4().hex

        def write(calls: int, cost: float, final: bool) -> Grant:
            return store.spend.record_spent(day, kind, token, run_id, calls, final, cost, policy)

        def reached(ceiling: Ceiling) -> None:
            store.spend.note_ceiling_reached(day, run_id, ceiling)

        return SpendLog(write, price=price, on_reached=reached)

    def existing(self, namespace: str | None = None) -> Warehouse:
        """The warehouse for a tool that only acts on what is there (replay): never created, so
        a mistyped URL is an error (WarehouseNotFoundError), not a new empty warehouse."""
        return open_existing(self.url, namespace)


@lru_cache(maxsize=16)
def _store(url: str, namespace: str | None = None) -> Warehouse:
    """One engine (and connection pool) per URL, namespace and process."""
    return Warehouse(create_warehouse_engine(url, namespace))
