"""Both sample profiles, each configured by its YAML declaration alone, through the whole daily
sync (Dagster ``materialize``, a real loopback server, a real warehouse): exactly the minimum
calls, a free re-run, and the API's truth in the warehouse."""

import math
import os

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.retired_variables import check_environment
from pipelines.retired_variables import main as retired_variables_main
from pipelines.sample_api import SampleApiConfig, World
from pipelines.sample_api.shop import metafields, shop_id
from pipelines.settings import SettingsError
from pipelines.source.declaration_file import load_declaration
from pipelines.sync.assets import watchlist
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import resources
from pipelines_tests.helpers import PROFILES, declaration_at
from pipelines_tests.test_sync_e2e import DAY1, DAY2, sync_day

TOKEN = "tok-declared-7c2e"
N = 700


def truth(profile: str, world: World, day: int) -> dict[str, object]:
    """What the warehouse must hold of each resource after ``day``: id as text -> details."""
    if profile == "items":
        return {rid: world.record(rid, day) for rid in world.ids(day)}
    return {str(shop_id(rid)): metafields(world.record(rid, day)) for rid in world.ids(day)}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_two_days_cost_the_minimum_and_a_rerun_is_free(
    profile, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    declared = load_declaration(PROFILES[profile])
    monkeypatch.setenv(declared.client.auth.token_env, TOKEN)
    server = sample_server(resources=N, change_rate=0.25, seed=9, day=1, token=TOKEN)
    path = declaration_at(PROFILES[profile], server.url, tmp_path)
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    world = World(SampleApiConfig(resources=N, change_rate=0.25, seed=9))
    with instance_for_test() as instance:
        day1 = sync_day(res, DAY1, instance)
        assert day1["changed"] == N and day1["dead"] == 0
        server.configure(day=2)
        server.reset()
        day2 = sync_day(res, DAY2, instance)
        stats = server.stats()
        server.reset()
        rerun = sync_day(res, DAY2, instance, selection=[synced_resources])
        again = sync_day(res, DAY2, instance)  # the whole day again: its listing is not paid twice
    changed = sum(world.changed_on(rid, 2) for rid in world.ids(2))
    per_call = declared.bulk_probe.max_ids if declared.probe.strategy == "bulk" else 1
    probes = math.ceil(N / per_call)  # batches of whole bulk probes (250 ids for the shop): every call full
    assert stats["detail"] == day2["changed"] == changed > 0
    assert stats["billable"] - stats["listing"] == day2["calls_made"] == probes + changed
    assert stats.get("unauthorized", 0) == 0
    assert rerun["calls_this_run"] == again["calls_this_run"] == 0 and server.stats()["billable"] == 0
    # each kind of call at the declaration's price, the listing's pages too
    price = declared.cost
    spent = {"probe": stats.get("probe", 0), "bulk_probe": stats.get("bulk_probe", 0), "detail": changed}
    assert day2["cost_usd"] == pytest.approx(price.of({**spent, "listing": stats["listing"]}), abs=1e-4)
    assert day2["cost_saved_usd"] == pytest.approx(price.of({"probe": N, "detail": N}) - price.of(spent), abs=1e-4)
    store = res["warehouse"].store()
    with store.engine.connect() as conn:
        rows = {r.resource_id: r.details for r in conn.execute(sa.select(resources))}
    assert rows == truth(profile, world, 2)


def test_a_deployment_moves_from_the_retired_variables_to_a_declaration_in_one_step(
    sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    """Day 1 synced from the declaration ``python -m pipelines.retired_variables`` wrote from a
    deployment's flat variables (its URL and token stay in theirs: the declaration reads them);
    day 2 with the same API declared by hand: the same warehouse carries on (no mismatch, nothing
    rewritten), and day 2 costs only its changes, as if nothing had moved."""
    server = sample_server(resources=N, change_rate=0.25, seed=9, day=1)
    for name, value in (
        ("SOURCE_API_URL", server.url),
        ("SOURCE_API_TOKEN", "tok-kept-1"),
        ("SOURCE_MAX_CONCURRENCY", "8"),
    ):
        monkeypatch.setenv(name, value)
    migrated = tmp_path / "source.yaml"
    assert retired_variables_main(["--out", str(migrated)]) == 0
    assert server.url not in migrated.read_text() and "tok-kept-1" not in migrated.read_text()
    assert load_declaration(migrated).rate.max_concurrency == 8
    with pytest.raises(SettingsError, match="SOURCE_MAX_CONCURRENCY: retired"):
        check_environment(os.environ, load_declaration(migrated).variables())
    monkeypatch.delenv("SOURCE_MAX_CONCURRENCY")  # moved: the rest is read by the declaration
    check_environment(os.environ, load_declaration(migrated).variables())
    warehouse = WarehouseResource(url=sqlite_warehouse_url)
    before = {"source_api": declared_source(migrated), "warehouse": warehouse}
    path = declaration_at(PROFILES["items"], server.url, tmp_path, {"client.auth": {"type": "none"}})  # by hand
    after = {"source_api": declared_source(str(path)), "warehouse": warehouse}
    world = World(SampleApiConfig(resources=N, change_rate=0.25, seed=9))
    with instance_for_test() as instance:
        sync_day(before, DAY1, instance)
        server.configure(day=2)
        server.reset()
        day2 = sync_day(after, DAY2, instance)
    changed = sum(world.changed_on(rid, 2) for rid in world.ids(2))
    assert day2["changed"] == server.stats()["detail"] == changed and day2["new"] == 0
    assert day2["calls_made"] == N + changed


def test_a_credential_variable_that_is_not_set_stops_the_run_once_naming_it(
    sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    monkeypatch.delenv("SHOP_ACCESS_TOKEN", raising=False)
    server = sample_server(resources=50, day=1)
    path = declaration_at(PROFILES["shop"], server.url, tmp_path)
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    with instance_for_test() as instance:
        result = materialize([watchlist], partition_key=DAY1, resources=res, instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("watchlist").error
    assert "SHOP_ACCESS_TOKEN is not set" in failure.message
    assert server.stats()["billable"] == 0  # nothing was sent without it
