"""A failure of the API is not a failure of its resources: end to end, on real loopback HTTP.

A revoked token, a configuration that makes every resource fail the same way, an API down all
day, a few flaky resources: each must end the way its cause calls for, not quarantine the
watchlist (dead letter, gone, deactivated) and not pass green.
"""

from datetime import date

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.sample_api import SampleApiConfig, World
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import alerts, batch_ledger, resources
from pipelines.warehouse.schema import dead_letter as dead_letter_table
from pipelines_tests.helpers import BEARER, PROFILES, WebhookReceiver, api_resource, declaration_at

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
D1, D2 = "2026-01-01", "2026-01-02"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


# the sources of these tests send their alerts to the webhook in this variable
HOOKED = {"operations.alerts.webhook_url_env": "TEST_ALERT_WEBHOOK_URL"}


@pytest.fixture
def hook(monkeypatch):
    receiver = WebhookReceiver()
    monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", receiver.url)
    yield receiver
    receiver.close()


def run(res, partition, instance, csv=None, step=None, beside=True):
    config = {"loggers": QUIET["loggers"], "ops": {}}
    if csv or not beside:
        config["ops"]["watchlist"] = {"config": {"csv_path": str(csv) if csv else None, "beside_sync": beside}}
    if step:
        config["ops"]["synced_resources"] = {"ops": {"sync_batches": {"config": step}}}
    config["ops"].setdefault("synced_resources", {"ops": {}})["ops"]["plan_sync_steps"] = {
        "config": {"batches_per_step": 2}
    }
    return materialize(
        ASSETS, partition_key=partition, resources=res, instance=instance, run_config=config, raise_on_error=False
    )


def state(store, day: str) -> dict[str, int]:
    """What a failure of the API must leave untouched."""
    d = date.fromisoformat(day)
    with store.engine.connect() as conn:
        return {
            "dead_letters": conn.execute(sa.select(sa.func.count()).select_from(dead_letter_table)).scalar_one(),
            "gone": conn.execute(sa.select(sa.func.count()).where(resources.c.status == "gone")).scalar_one(),
            "active": store.watchlist.watchlist_counts()["active"],
            "completed_today": conn.execute(
                sa.select(sa.func.count()).where(batch_ledger.c.partition == d, batch_ledger.c.status == "completed")
            ).scalar_one(),
            "outcomes_today": len(store.reports.outcomes_of(d)),
        }


def alert_kinds(store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(alerts.c.kind).order_by(alerts.c.id)).scalars())


def failure_message(result) -> str:
    return "\n".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)


def write_csv(path, ids):
    path.write_text("resource_id\n" + "\n".join(ids) + "\n")
    return path


@pytest.mark.parametrize("where", ["listing", "listing_beside", "batches"])
def test_a_revoked_token_stops_the_run_and_quarantines_nothing(
    sample_server, pg_warehouse_url, hook, tmp_path, where, monkeypatch
):
    server = sample_server(resources=600, token="tok-good-1234", day=1)
    monkeypatch.setenv("SOURCE_API_TOKEN", "tok-good-1234")
    res = {
        "source_api": api_resource(server.url, {"client.auth": BEARER, **HOOKED}),
        "warehouse": WarehouseResource(url=pg_warehouse_url),
    }
    store = res["warehouse"].store()
    csv = write_csv(tmp_path / "ids.csv", World(SampleApiConfig(resources=600)).ids(1)) if where == "batches" else None
    with instance_for_test() as instance:
        assert run(res, D1, instance, csv).success
        before = state(store, D1)
        server.configure(day=2, token="tok-rotated-5678")  # the token is revoked
        server.reset()
        result = run(res, D2, instance, csv, beside=where != "listing")  # "listing": listed before the job set
        assert not result.success
        message = failure_message(result)
        assert "SOURCE_API_TOKEN" in message and "tok-good-1234" not in message
        after = state(store, D2)
        assert after == {**before, "completed_today": 0, "outcomes_today": 0}  # nothing quarantined, nothing written
        # it stopped at once: the listing's one call, or the requests in flight (at most the
        # concurrency bound) of the first batch and, beside it, the listing
        assert server.stats()["unauthorized"] <= (1 if where == "listing" else 16)
        assert alert_kinds(store) == ["auth_failed"] and [b["kind"] for b in hook.bodies] == ["auth_failed"]
        assert "SOURCE_API_TOKEN" in hook.bodies[0]["text"]

        server.configure(token="tok-good-1234")  # the token is fixed: the next run finishes the day
        fixed = run(res, D2, instance, csv)
    assert fixed.success
    checks = {e.check_name: e for e in fixed.get_asset_check_evaluations()}
    assert checks["conservation"].passed and checks["synced_share"].passed
    assert state(store, D2)["outcomes_today"] == 600


SYSTEMIC = {
    # a typo in the fingerprint fields (consistent with the probe fields, so it passes the load check)
    "fingerprint_typo": (
        {"probe.fields": ["id", "versoin"], "fingerprint": ["versoin"], "detail.required": ["id", "versoin"]},
        {},
        "fingerprint",
    ),
    # a path the API does not have: every probe is a 404
    "every_id_404": ({"probe.path": "/item/{id}"}, {}, "probe.path"),
    # the detail path is wrong: every detail call is a 404 (the probes are fine)
    "detail_path_404": ({"detail.path": "/items/{id}/detail"}, {}, "detail.path"),
    # the bulk strategy against an API without a bulk probe: every chunk unusable
    "no_bulk_probe": ({"probe.strategy": "bulk"}, {"bulk_probe": False}, "bulk_probe.path"),
}


@pytest.mark.parametrize("case", list(SYSTEMIC))
def test_every_resource_failing_the_same_way_stops_the_run(sample_server, sqlite_warehouse_url, hook, case):
    source, knobs, setting = SYSTEMIC[case]
    server = sample_server(resources=1000, day=1, **knobs)
    res = {
        "source_api": api_resource(server.url, {**source, **HOOKED}),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        server.reset()
        result = run(res, D1, instance)
    assert not result.success
    message = failure_message(result)
    assert "failed the same way" in message and setting in message
    # quarantined nothing: no dead letter, nothing gone, the watchlist whole, no batch written
    assert state(store, D1) == {"dead_letters": 0, "gone": 0, "active": 1000, "completed_today": 0, "outcomes_today": 0}
    stats = server.stats()
    # at most one batch's calls (100 sub-jobs: 200 calls) were spent, with 4 batches a step: as
    # the server counted them, and as the client wrote them down (a path the API has no route for
    # is not counted by the sample API, but it is by the client, as a real API would bill it)
    assert stats["billable"] - stats.get("listing", 0) <= 200
    assert store.reports.partition_summary(date.fromisoformat(D1))["calls"] <= 200
    assert alert_kinds(store) == ["systemic_failure"] and setting in hook.bodies[0]["text"]
    with store.engine.connect() as conn:  # the claims were given back: the next run need not wait out leases
        leases = conn.execute(sa.select(batch_ledger.c.status, batch_ledger.c.lease_expires)).all()
    assert all(status == "running" for status, _ in leases)


def test_a_real_mass_deletion_can_be_let_through(sample_server, sqlite_warehouse_url):
    """The guard is a setting: an operator who knows the resources really went sets it off."""
    server = sample_server(resources=300, day=1, gone_rate=0.0)
    res = {
        "source_api": api_resource(server.url),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    with instance_for_test() as instance:
        assert run(res, D1, instance).success
        server.configure(day=2, resources=0)  # every resource deleted at the source
        result = run(res, D2, instance, step={"systemic_failure_ratio": 0.0})
    assert result.success
    assert state(res["warehouse"].store(), D2)["gone"] == 300


def test_flaky_resources_never_open_the_breaker(sample_server, sqlite_warehouse_url, tmp_path):
    """10% of resources fail up to 5 consecutive attempts: only those outlasting tier 1 go to tier 2."""
    knobs = dict(resources=1000, flaky_rate=0.1, flaky_attempts=5, seed=11)
    world = World(SampleApiConfig(**knobs))
    server = sample_server(**knobs, day=1)
    retries = {"max_attempts": 4, "backoff_initial": 0.01, "backoff_max": 0.05}  # what matters is the count
    changes = {"client.retries": retries, "client.auth": {"type": "none"}}
    path = declaration_at(PROFILES["items"], server.url, tmp_path, changes)
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        day1 = run(res, D1, instance)
        server.configure(day=2)
        day2 = run(res, D2, instance)
    assert day1.success and day2.success
    flaky = {rid: world.flaky_failures(rid) for rid in world.ids(1) if world.flaky_failures(rid)}
    assert 70 <= len(flaky) <= 130 and server.stats()["flaky"] > 0
    outcomes1 = store.reports.outcomes_of(date.fromisoformat(D1))
    # exactly those failing 4+ attempts in a row (all of tier 1) went to tier 2; no circuit_open
    assert {rid for rid, o in outcomes1.items() if o == "retry"} == {rid for rid, k in flaky.items() if k >= 4}
    assert {rid for rid, o in outcomes1.items() if o != "retry"} == set(world.ids(1)) - {
        rid for rid, k in flaky.items() if k >= 4
    }
    assert all(e != "circuit_open" for e in store.reports.error_classes(date.fromisoformat(D1)))
    outcomes2 = store.reports.outcomes_of(date.fromisoformat(D2))
    assert all(outcomes2[rid] in ("changed", "unchanged") for rid in flaky)  # tier 2 brought them back
