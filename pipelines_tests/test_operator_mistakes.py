"""Operator mistakes end in a clear error that names them, never in a green run that did the
wrong thing: an empty SOURCE_API_URL, the sample API pointed at a real source's warehouse."""

from datetime import date

from dagster import instance_for_test, materialize

from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import SourceApiResource, WarehouseResource
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import resources

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run(source_api, warehouse_url, partition, instance):
    res = {"source_api": source_api, "warehouse": WarehouseResource(url=warehouse_url)}
    result = materialize(
        ASSETS, partition_key=partition, resources=res, instance=instance, run_config=QUIET, raise_on_error=False
    )
    errors = "\n".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)
    return result, errors


def test_an_empty_api_url_is_refused_not_taken_for_the_sample(sqlite_warehouse_url):
    with instance_for_test() as instance:
        result, errors = run(SourceApiResource(base_url=""), sqlite_warehouse_url, "2026-01-01", instance)
    assert not result.success and "SOURCE_API_URL is set but empty" in errors
    assert WarehouseResource(url=sqlite_warehouse_url).store().count(resources) == 0


def test_the_sample_api_never_syncs_into_a_real_sources_warehouse(sample_server, sqlite_warehouse_url):
    server = sample_server(resources=200, day=1)
    store = WarehouseResource(url=sqlite_warehouse_url).store()
    with instance_for_test() as instance:
        real, _ = run(SourceApiResource(base_url=server.url), sqlite_warehouse_url, "2026-01-01", instance)
        assert real.success
        before = store.count(resources)
        sample, errors = run(SourceApiResource(sample_resources=300), sqlite_warehouse_url, "2026-01-02", instance)
    assert not sample.success
    assert f"holds the data of {server.url}" in errors and "WAREHOUSE_URL" in errors
    assert store.count(resources) == before == 200 and not store.outcomes_of(date(2026, 1, 2))


def test_the_embedded_sample_api_says_so_loudly(sqlite_warehouse_url, capfd):
    with instance_for_test() as instance:
        result, _ = run(SourceApiResource(sample_resources=100), sqlite_warehouse_url, "2026-01-01", instance)
    assert result.success
    assert "SOURCE_API_URL is not set: syncing the EMBEDDED SAMPLE API" in capfd.readouterr().err
