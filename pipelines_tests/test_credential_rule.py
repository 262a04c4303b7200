"""Credentials go only where they are declared to go: variables named by the convention and
refused without echo otherwise, never the deployment's own, no credential written inline, a URL
variable that holds something else refused unseen; and one scrubber for everything stored."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
import yaml

from pipelines.check_source import main as check_source
from pipelines.core.redact import register, scrub
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines.source.config import MissingSecretError, resolve_base_url, resolve_credentials
from pipelines.source.declaration_file import DeclarationError, parse_declaration
from pipelines.warehouse.schema import alerts, run_halts, warehouse_meta
from pipelines.warehouse.store import Warehouse, create_warehouse_engine
from pipelines_tests.hostile_api import HostileApi

SECRET_LIKE = [
    "shpat_0123456789abcdef0123456789abcdef",
    "ghp_0123456789ABCDEFabcdef0123456789abcd",
    "AKIAIOSFODNN7EXAMPLE",
    "sk_live_51H8xYzAbCdEf",
    "lower_case_name",
    "A1B2C3D4E5F6G7H8I9J0K1L2M3",
]
DEPLOYMENT = [
    "WAREHOUSE_URL",
    "SOURCE_RATE_LIMITER_URL",
    "ALERT_WEBHOOK_URL",
    "SYNC_CELERY_BROKER_URL",
    "DAGSTER_HOME",
    "DAGSTER_PG_PASSWORD",
    "PGPASSWORD",
    "POSTGRES_PASSWORD",
]
API = {"base_url": "https://api.example.com"}


def declaration(client: dict, **rest: object) -> str:
    """A declaration of source ``guarded`` with this ``client:`` section, as YAML."""
    return yaml.safe_dump({"name": "guarded", "client": client, **rest}, sort_keys=False)


def refused(text: str) -> str:
    with pytest.raises(DeclarationError) as caught:
        parse_declaration(text, "guarded.yaml")
    return str(caught.value)


@pytest.mark.parametrize("value", SECRET_LIKE)
def test_a_value_where_a_variables_name_belongs_is_refused_and_never_repeated(value, tmp_path, capsys):
    text = declaration({**API, "auth": {"type": "bearer", "token_env": value}})
    message = refused(text)
    assert value not in message
    assert "client.auth.token_env" in message and "never its value" in message
    path = tmp_path / "guarded.yaml"
    path.write_text(text)
    assert check_source([str(path)]) == 1  # the checker a user runs first says so, and does not print it
    printed = capsys.readouterr()
    assert value not in printed.out + printed.err


@pytest.mark.parametrize("name", DEPLOYMENT)
@pytest.mark.parametrize("where", ["token_env", "base_url_env", "proxy_url_env", "secret_headers"])
def test_the_deployments_own_variables_are_never_a_sources(name, where):
    client = {
        "token_env": {**API, "auth": {"type": "bearer", "token_env": name}},
        "base_url_env": {"base_url_env": name},
        "proxy_url_env": {**API, "proxy_url_env": name},
        "secret_headers": {**API, "secret_headers": {"X-Api-Key": name}},
    }[where]
    assert f"{name} is the deployment's own variable" in refused(declaration(client))


@pytest.mark.parametrize(
    ("client", "named"),
    [
        ({**API, "headers": {"X-Shop-Access-Token": "abc123"}}, "X-Shop-Access-Token"),
        ({**API, "headers": {"X-Custom": "shpat_0123456789abcdef0123456789ab"}}, "X-Custom"),
        ({**API, "params": {"api_key": "k-42"}}, "api_key"),
        ({**API, "params": {"key": "k-42"}}, "key"),
    ],
)
def test_a_credential_written_inline_is_refused_and_not_shown(client, named):
    message = refused(declaration(client))
    assert f"{named} looks like a credential" in message and "secret_" in message
    assert "abc123" not in message and "k-42" not in message and "shpat_" not in message


def test_an_endpoints_inline_credential_and_a_base_url_query_are_refused():
    assert "access_token looks like a credential" in refused(
        declaration(API, listing={"params": {"access_token": "t0k3n"}})
    )
    assert "without a query" in refused(declaration({"base_url": "https://api.example.com/v1?api_key=s3cr3t-value"}))


def test_a_url_variable_that_holds_something_else_is_refused_unseen():
    source = parse_declaration(declaration({"base_url_env": "SHOP_URL"}), "guarded.yaml")
    with pytest.raises(MissingSecretError) as caught:
        resolve_base_url(source, {"SHOP_URL": "postgresql://app:hunter2@db/warehouse"})
    assert "SHOP_URL" in str(caught.value) and "hunter2" not in str(caught.value)
    assert "its value is not shown" in str(caught.value)
    assert resolve_base_url(source, {"SHOP_URL": "https://shop.example.com/admin"}) == "https://shop.example.com/admin"


def test_declared_secret_headers_and_params_are_sent_and_scrubbed_from_what_comes_back():
    api = HostileApi()
    api.mode.reflect, api.mode.status_ids = True, {"r1": 400}
    client = {
        "base_url": api.url,
        "secret_headers": {"X-Shop-Access-Token": "SHOP_TOKEN"},
        "secret_params": {"signature": "SHOP_SIGNATURE"},
    }
    source = parse_declaration(declaration(client), "guarded.yaml")
    environ = {"SHOP_TOKEN": "tok-HEADER-5f3a9c", "SHOP_SIGNATURE": "sig-PARAM-77b1e0"}
    settings = ClientSettings(api.url, source, resolve_credentials(source, environ))

    async def go():
        async with SourceApiClient(settings) as client:
            try:
                await client.detail("r1")
            except Exception as exc:  # noqa: BLE001 - the dead letter's view of the failure
                return exc
        raise AssertionError("no failure")

    try:
        error = asyncio.run(go())
        seen = api.seen[0]
    finally:
        api.close()
    assert seen.headers["X-Shop-Access-Token"] == "tok-HEADER-5f3a9c" and "signature=sig-PARAM-77b1e0" in seen.target
    stored = f"{error.url} {error.request_headers} {error.headers} {error.body_excerpt} {error.message}"
    assert "tok-HEADER" not in stored and "sig-PARAM" not in stored and "[redacted]" in stored


def test_every_statement_written_to_the_warehouse_passes_the_scrubber(sqlite_warehouse_url):
    from datetime import date

    from pipelines.alerting.channel import send
    from pipelines.alerting.messages import Alert

    secret = "wh-scrub-SECRET-31f9e2"
    register([secret])
    store = Warehouse(create_warehouse_engine(sqlite_warehouse_url))
    send(Alert("run_failed", "2026-01-01", f"failed with {secret}", {"why": secret}), store, None)
    store.runs.halt_run("run-1", date(2026, 1, 1), "api_contract", f"the API said {secret}")
    store.runs.claim_source(f"https://{secret}.example.com")
    with store.engine.connect() as conn:
        rows = [row for table in (alerts, run_halts, warehouse_meta) for row in conn.execute(sa.select(table))]
    dump = " ".join(map(str, rows))
    assert secret not in dump and dump.count("[redacted]") >= 4
    assert scrub({"a": [secret, 1]}) == {"a": ["[redacted]", 1]}
