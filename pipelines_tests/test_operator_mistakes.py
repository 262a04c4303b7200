"""Operator mistakes end in a clear error that names them, never in a green run that did the
wrong thing: an empty URL variable, the sample API pointed at a real source's warehouse, a
and a retired flat variable (test_settings.py)."""

from datetime import date

import pytest
from dagster import instance_for_test, materialize

from pipelines.source.declaration_file import load_declaration
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import resources
from pipelines_tests.helpers import api_resource

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run(source_api, warehouse_url, partition, instance):
    res = {"source_api": source_api, "warehouse": WarehouseResource(url=warehouse_url)}
    result = materialize(
        ASSETS, partition_key=partition, resources=res, instance=instance, run_config=QUIET, raise_on_error=False
    )
    errors = "\n".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)
    return result, errors


def test_an_empty_api_url_is_refused_not_taken_for_the_sample(sqlite_warehouse_url, monkeypatch, tmp_path):
    monkeypatch.setenv("ACME_API_URL", "")  # an env file's ``ACME_API_URL=``
    path = tmp_path / "acme.yaml"
    path.write_text("name: acme\nclient: {base_url_env: ACME_API_URL}\n")
    with instance_for_test() as instance:
        result, errors = run(declared_source(path), sqlite_warehouse_url, "2026-01-01", instance)
    assert not result.success and "ACME_API_URL is not set: source 'acme' reads its URL from it" in errors
    assert WarehouseResource(url=sqlite_warehouse_url).store().reports.count(resources) == 0
    path.write_text('name: acme\nclient: {base_url: ""}\n')  # written empty: refused when it loads
    with pytest.raises(ValueError, match=r"line 2: client.base_url: must be an http:// or https:// URL"):
        load_declaration(path)


def test_the_sample_api_never_syncs_into_a_real_sources_warehouse(sample_server, sqlite_warehouse_url):
    server = sample_server(resources=200, day=1)
    store = WarehouseResource(url=sqlite_warehouse_url).store()
    with instance_for_test() as instance:
        real, _ = run(api_resource(server.url), sqlite_warehouse_url, "2026-01-01", instance)
        assert real.success
        before = store.reports.count(resources)
        sample, errors = run(
            api_resource(None, {"client.sample.resources": 300}), sqlite_warehouse_url, "2026-01-02", instance
        )
    assert not sample.success
    assert f"holds the data of {server.url}" in errors and "WAREHOUSE_URL" in errors
    assert store.reports.count(resources) == before == 200 and not store.reports.outcomes_of(date(2026, 1, 2))


def test_the_embedded_sample_api_says_so_loudly(sqlite_warehouse_url, capfd):
    with instance_for_test() as instance:
        result, _ = run(
            api_resource(None, {"client.sample.resources": 100}), sqlite_warehouse_url, "2026-01-01", instance
        )
    assert result.success
    assert "declares client.sample: syncing the EMBEDDED SAMPLE API" in capfd.readouterr().err
