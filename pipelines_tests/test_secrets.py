"""No credential anywhere: configured as an operator configures them (the environment, read by
``build_resources``), used for real (a reflecting API, a proxy with a password, PostgreSQL and
Redis URLs with passwords, a webhook whose path is its secret), then looked for everywhere they
could land: Dagster's run storage with its zlib-compressed snapshots, every run's event log,
a dump of every warehouse table, the logs, the dead letter and the alerts."""

import contextlib
import json
import sqlite3
import zlib
from pathlib import Path

import redis
import sqlalchemy as sa
import yaml
from dagster import instance_for_test, materialize

from pipelines.definitions import build_resources, single_source
from pipelines.retired_variables import declaration_from
from pipelines.settings import load_settings
from pipelines.sync import stops
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import metadata
from pipelines_tests.helpers import ForwardProxy, WebhookReceiver
from pipelines_tests.hostile_api import HostileApi

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
SECRETS = {
    "token": "tok-SECRET-token-7a1f",
    "proxy": "proxy-SECRET-8b2e",
    "warehouse": "wh-SECRET-9c3d",
    "redis": "redis-SECRET-0d4c",
    "webhook": "hook-SECRET-1e5b",
}
QUIET = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


def storage_text(root: Path) -> str:
    """Every value of every table of every SQLite file of a Dagster instance, blobs inflated."""
    out = []
    for db in root.rglob("*.db"):
        with sqlite3.connect(db) as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - our own test files
                    for value in row:
                        if isinstance(value, bytes):
                            with contextlib.suppress(zlib.error):
                                value = zlib.decompress(value)
                            value = value.decode("utf-8", "replace")
                        out.append(str(value))
    return "\n".join(out)


def warehouse_text(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        text = "\n".join(
            json.dumps([list(r) for r in conn.execute(sa.select(t))], default=str) for t in metadata.sorted_tables
        )
    engine.dispose()
    return text


def test_no_credential_lands_anywhere(monkeypatch, pg_warehouse_url, capfd, caplog, tmp_path):
    api = HostileApi()
    api.mode.reflect = True  # every request header echoed back, in bodies and response headers
    api.mode.listing = [f"r{i:03d}" for i in range(150)] + ["bad-1", "bad-2"]
    api.mode.status_ids = {"bad-1": 422, "bad-2": 422}  # dead-lettered, with their reflected headers
    proxy = ForwardProxy("rotator", SECRETS["proxy"])
    hook = WebhookReceiver(status=500)  # a failing webhook: its error message is stored and logged
    hook_url = hook.url.replace("/hooks/alerts", f"/services/T0/B0/{SECRETS['webhook']}")
    warehouse_url = sa.engine.make_url(pg_warehouse_url).set(password=SECRETS["warehouse"])  # trust auth ignores it
    env = {
        "SOURCE_API_URL": api.url,
        "SOURCE_API_TOKEN": SECRETS["token"],
        "SOURCE_API_PROXY_URL": proxy.url,
        "WAREHOUSE_URL": warehouse_url.render_as_string(hide_password=False),
        "SOURCE_RATE_LIMITER_URL": f"redis://default:{SECRETS['redis']}@127.0.0.1:6379/0",
        "ALERT_WEBHOOK_URL": hook_url,
    }
    # the source reads its URL, token and proxy from those variables (what the migration of a
    # flat-variable deployment writes), and draws on a shared budget of its own
    declared = declaration_from({**env, "SOURCE_RATE_LIMITER_KEY": "pipelines-test:secrets"})
    env["SOURCE_DECLARATION"] = str(tmp_path / "source.yaml")
    Path(env["SOURCE_DECLARATION"]).write_text(yaml.safe_dump(declared.model_dump(mode="json")))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()
    settings = load_settings()  # as the code location loads them (which keeps them out of the logs)
    load_settings.cache_clear()
    monkeypatch.setattr(stops, "load_settings", lambda: settings)
    resources = {**build_resources(settings), "source_api": single_source(settings)}
    budget_key = "pipelines:rate:pipelines-test:secrets"  # the shared budget the client draws on
    redis.Redis.from_url(env["SOURCE_RATE_LIMITER_URL"]).delete(budget_key)  # a day old one would pass for it
    caplog.set_level("DEBUG")
    try:
        with instance_for_test() as instance:
            day1 = materialize(
                ASSETS, partition_key="2026-01-01", resources=resources, instance=instance, run_config=QUIET
            )
            api.mode.status = 401  # the token is revoked: the run stops, alerting a webhook that fails
            day2 = materialize(
                ASSETS,
                partition_key="2026-01-02",
                resources=resources,
                instance=instance,
                run_config=QUIET,
                raise_on_error=False,
            )
            events = "\n".join(str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id))
            storage = storage_text(Path(instance.root_directory))
        store = WarehouseResource(url=env["WAREHOUSE_URL"]).store()  # the resource holds EnvVar("WAREHOUSE_URL")
        dead = store.queues.dead_letters()
        dump = warehouse_text(pg_warehouse_url)
    finally:
        api.close()
        proxy.close()
        hook.close()
    out, err = capfd.readouterr()

    # the credentials were really used
    assert day1.success and not day2.success
    assert proxy.forwarded > 150 and proxy.refused == 0  # every call went through the proxy, authenticated
    assert api.seen[0].headers["Authorization"] == f"Bearer {SECRETS['token']}"
    assert redis.Redis.from_url(env["SOURCE_RATE_LIMITER_URL"]).exists(budget_key)
    assert len(dead) == 2 and all("[redacted]" in e["body_excerpt"] for e in dead)  # the API echoed the token
    assert hook.bodies and hook.bodies[0]["kind"] == "auth_failed"  # the webhook was called (and failed)
    assert "delivery" not in storage  # (sanity of the haystack: it is Dagster's storage, not ours)

    haystacks = {
        "Dagster's run storage (snapshots inflated)": storage,
        "the event log": events,
        "the warehouse (every table)": dump,
        "the logs": caplog.text + out + err,
        "the dead letter": json.dumps(dead, default=str),
    }
    for what, secret in SECRETS.items():
        for where, text in haystacks.items():
            assert secret not in text, f"the {what} secret leaked into {where}"
