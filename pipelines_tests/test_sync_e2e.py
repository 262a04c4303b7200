"""The daily sync end to end: ``materialize`` against the sample API, into a real warehouse."""

import math
from datetime import date

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.core.fingerprint import fingerprint
from pipelines.sample_api import SampleApiConfig, World
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import batch_ledger, resources, sub_job_outcomes
from pipelines.warehouse.schema import job_set as job_set_table
from pipelines_tests.helpers import api_resource, postgres_database, sync_resources

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
DAY1, DAY2, DAY3 = "2026-01-01", "2026-01-02", "2026-01-03"  # simulated days 1, 2, 3
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def sync_day(resources, partition, instance=None, selection=None, force=False, batches_per_step=4):
    plan = {"force": force, "batches_per_step": batches_per_step}
    run_config = {**QUIET, "ops": {"synced_resources": {"ops": {"plan_sync_steps": {"config": plan}}}}}
    result = materialize(
        ASSETS,
        partition_key=partition,
        resources=resources,
        instance=instance,
        selection=selection,
        run_config=run_config,
    )
    assert result.success
    return result.output_for_node("synced_resources")


def metadata_of(result_instance, partition):
    event = result_instance.get_latest_materialization_event(synced_resources.key)
    assert event.dagster_event.partition == partition
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@pytest.fixture
def pg_instance():
    """A Dagster instance whose run, event and schedule storage is PostgreSQL."""
    with postgres_database("pipelines_dagster") as url:
        overrides = {"storage": {"postgres": {"postgres_url": url}}}
        with instance_for_test(overrides=overrides) as instance:
            yield instance


def test_two_days_and_a_rerun_on_postgres(sample_server, pg_warehouse_url, pg_instance):
    n = 1_000
    config = SampleApiConfig(resources=n, change_rate=0.2, seed=11)
    server = sample_server(resources=n, change_rate=0.2, seed=11, day=1)
    res = sync_resources(pg_warehouse_url, server.url)
    store = res["warehouse"].store()

    # Day 1: everything is new: one probe and one detail call per sub-job.
    day1 = sync_day(res, DAY1, pg_instance)
    stats = server.stats()
    assert (stats["probe"], stats["detail"], stats["listing"]) == (n, n, math.ceil(n / 500))
    assert day1["changed"] == day1["new"] == n and day1["calls_made"] == 2 * n
    assert day1["batches_completed"] == day1["batches_expected"] == n // 100

    # Day 2, 20% changed: exactly N probes plus one detail call per changed resource.
    server.configure(day=2)
    server.reset()
    day2 = sync_day(res, DAY2, pg_instance)
    world = World(config)
    changed = sum(world.changed_on(rid, 2) for rid in world.ids(2))
    assert 0.15 * n < changed < 0.25 * n
    stats = server.stats()
    assert (stats["probe"], stats["detail"]) == (n, changed)
    assert (day2["changed"], day2["unchanged"], day2["new"]) == (changed, n - changed, 0)
    assert day2["calls_made"] == n + changed
    assert day2["calls_saved"] == 2 * n - (n + changed)
    recorded = metadata_of(pg_instance, DAY2)
    for key in (
        "sub_jobs",
        "batches_expected",
        "batches_completed",
        "changed",
        "unchanged",
        "retry",
        "dead",
        "calls_made",
        "calls_saved",
        "duration_s",
    ):
        assert key in recorded
    assert recorded["calls_made"] == n + changed

    # A re-run of day 2: completed batches make no call and write no row.
    counts = {t.name: store.reports.count(t) for t in (resources, sub_job_outcomes, batch_ledger, job_set_table)}
    server.reset()
    rerun = sync_day(res, DAY2, pg_instance)
    stats = server.stats()
    assert stats.get("probe", 0) == stats.get("detail", 0) == stats.get("bulk_probe", 0) == 0
    assert rerun["calls_this_run"] == 0
    assert {
        t.name: store.reports.count(t) for t in (resources, sub_job_outcomes, batch_ledger, job_set_table)
    } == counts

    # The warehouse holds the API's truth for every id.
    with store.engine.connect() as conn:
        rows = {r.resource_id: r for r in conn.execute(sa.select(resources))}
    assert sorted(rows) == world.ids(2)
    for rid, row in rows.items():
        assert row.fingerprint == fingerprint({"version": world.version(rid, 2)}, ["version"])
        assert row.details == world.record(rid, 2)
    assert len(pg_instance.get_runs()) == 3


@pytest.mark.parametrize(("strategy", "probes"), [("conditional", 400), ("bulk", 4)])
def test_other_probe_strategies_cost_what_they_should(sample_server, sqlite_warehouse_url, strategy, probes):
    n = 400
    world = World(SampleApiConfig(resources=n, change_rate=0.3, seed=3))
    server = sample_server(resources=n, change_rate=0.3, seed=3, day=1)
    api = api_resource(server.url, {"probe.strategy": strategy})
    res = {"source_api": api, "warehouse": WarehouseResource(url=sqlite_warehouse_url)}
    with instance_for_test() as instance:
        sync_day(res, DAY1, instance)
        server.configure(day=2)
        server.reset()
        day2 = sync_day(res, DAY2, instance)
    changed = sum(world.changed_on(rid, 2) for rid in world.ids(2))
    stats = server.stats()
    assert stats["detail"] == day2["changed"] == changed
    assert stats["billable"] - stats["listing"] == day2["calls_made"] == probes + changed
    if strategy == "conditional":
        assert stats["not_modified"] == n - changed
    else:
        assert stats["bulk_probe"] == probes and stats.get("probe", 0) == 0


def test_force_resyncs_completed_batches(sample_server, sqlite_warehouse_url):
    server = sample_server(resources=300, day=1)
    res = sync_resources(sqlite_warehouse_url, server.url)
    with instance_for_test() as instance:
        sync_day(res, DAY1, instance)
        server.reset()
        again = sync_day(res, DAY1, instance, selection=[synced_resources], force=True)
    assert server.stats()["probe"] == 300
    assert server.stats().get("detail", 0) == 0  # nothing changed since: probes only
    assert again["calls_this_run"] == 300 and again["unchanged"] == 300


def test_gone_resources_are_recorded_and_leave_tomorrows_job_set(sample_server, sqlite_warehouse_url):
    config = SampleApiConfig(resources=500, gone_rate=0.03, seed=5)
    world = World(config)
    server = sample_server(resources=500, gone_rate=0.03, seed=5, day=1)
    res = sync_resources(sqlite_warehouse_url, server.url)
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        sync_day(res, DAY1, instance)
        server.configure(day=2)
        day2 = sync_day(res, DAY2, instance, selection=[job_set, synced_resources])  # yesterday's watchlist
        server.configure(day=3)
        sync_day(res, DAY3, instance, selection=[job_set, synced_resources])
    gone_on_2 = set(world.ids(1)) - set(world.ids(2))
    assert day2["gone"] == len(gone_on_2) > 0
    history = store.reports.outcome_history(sorted(gone_on_2)[0])
    assert [(str(h["partition"]), h["outcome"]) for h in history] == [(DAY1, "changed"), (DAY2, "gone")]
    assert store.job_sets.job_set_counts(date(2026, 1, 3))["sub_jobs"] == len(world.ids(1)) - len(gone_on_2)


def test_the_embedded_sample_api_needs_no_setup(sqlite_warehouse_url):
    res = sync_resources(sqlite_warehouse_url, None, {"client.sample.resources": 250})
    with instance_for_test() as instance:
        day1 = sync_day(res, DAY1, instance)
        day2 = sync_day(res, DAY2, instance)
    world = World(SampleApiConfig(resources=250, day=2))
    assert day1["changed"] == 250 and day1["calls_made"] == 500
    assert day2["changed"] == sum(world.changed_on(rid, 2) for rid in world.ids(2))
    assert day2["calls_made"] == 250 + day2["changed"]


def test_watchlist_from_a_csv(tmp_path, sqlite_warehouse_url):
    csv = tmp_path / "watch.csv"
    csv.write_text("resource_id,note\n" + "".join(f"r{i:07d},x\n" for i in range(0, 40, 2)) + "r9999999,unknown\n")
    res = sync_resources(sqlite_warehouse_url, None, {"client.sample.resources": 100})
    run_config = {**QUIET, "ops": {"watchlist": {"config": {"csv_path": str(csv)}}}}
    with instance_for_test() as instance:
        result = materialize(ASSETS, partition_key=DAY1, resources=res, instance=instance, run_config=run_config)
    summary = result.output_for_node("synced_resources")
    assert summary["sub_jobs"] == 21
    assert (summary["changed"], summary["gone"]) == (20, 1)  # the unknown id answers 404


def test_a_csv_without_an_id_column_is_named(tmp_path, sqlite_warehouse_url):
    csv = tmp_path / "bad.csv"
    csv.write_text("name\nx\n")
    res = sync_resources(sqlite_warehouse_url, None, {"client.sample.resources": 10})
    run_config = {**QUIET, "ops": {"watchlist": {"config": {"csv_path": str(csv)}}}}
    with instance_for_test() as instance:
        result = materialize(
            [watchlist],
            partition_key=DAY1,
            resources=res,
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "resource_id or id column" in str(failure.step_failure_data.error)
