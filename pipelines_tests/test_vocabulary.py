"""Words a declaration needed for real APIs (issue 26.2), each against a loopback server: ids
as repeated parameters, the change filter written as the API writes times, a listing's own
parameters kept on next-page links that drop them."""

import asyncio

import pytest

from pipelines.core.listing_probe import format_marker, marker_seconds
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines.source.config import Credentials
from pipelines.source.declaration import declare
from pipelines_tests.hostile_api import HostileApi


@pytest.fixture
def api():
    server = HostileApi()
    yield server
    server.close()


def client_of(api: HostileApi, changes: dict) -> ClientSettings:
    return ClientSettings(api.url, declare(api.url, changes), Credentials())


def test_a_bulk_probe_can_name_each_id_as_its_own_parameter(api):
    settings = client_of(
        api, {"probe.strategy": "bulk", "bulk_probe.ids_param": "id", "bulk_probe.ids_style": "repeated"}
    )

    async def go():
        async with SourceApiClient(settings) as client:
            assert client.bulk_safe("a,b")  # no separator to split on: any id goes in bulk
            return await client.bulk_probe(["r1", "a,b", "c&d"], ["id", "version"])

    records, missing = asyncio.run(go())
    assert set(records) == {"r1", "a,b", "c&d"} and missing == []
    assert api.targets() == ["/items?id=r1&id=a%2Cb&id=c%26d&fields=id,version"]


@pytest.mark.parametrize(
    ("fmt", "written"),
    [
        ("iso8601", "2026-01-02T03:04:05.500000+00:00"),
        ("iso8601_z", "2026-01-02T03:04:05Z"),
        ("iso8601_ms_z", "2026-01-02T03:04:05.500Z"),
        ("epoch_seconds", "1767323045"),
        ("epoch_millis", "1767323045500"),
    ],
)
def test_the_change_filter_is_written_as_the_api_writes_times_and_read_back(fmt, written):
    assert format_marker(1767323045.5, fmt) == written
    assert marker_seconds(written, fmt) == pytest.approx(1767323045.5, abs=1)
    assert marker_seconds("2026-01-02T03:04:05.500Z", fmt) == pytest.approx(1767323045.5)  # ISO markers whatever fmt


def test_the_listings_own_parameters_are_kept_on_next_page_links_that_drop_them(api):
    api.mode.listing = [f"r{i}" for i in range(250)]
    api.mode.listing_style = "link"  # its Link headers name only ?page=&per_page=
    changes = {
        "listing.page_size": 100,
        "listing.page_size_param": "per_page",
        "listing.data_selector": "",
        "listing.paginator": {"type": "link_header"},
        "listing.params": {"include": "tags"},
        "listing.keep_params": True,
    }

    async def go():
        async with SourceApiClient(client_of(api, changes)) as client:
            return [rid async for page in client.iter_ids() for rid in page]

    assert len(asyncio.run(go())) == 250
    targets = api.targets()
    assert len(targets) == 3 and all("fields=id" in t and "include=tags" in t for t in targets)


def test_a_learned_rate_is_where_the_next_run_starts(sample_server, sqlite_warehouse_url, tmp_path, monkeypatch):
    """No declared rate and no Redis: day 1 finds a 40/s API's rate from its 429s; day 2 starts
    there instead of paying for the same 429s again."""
    from dagster import instance_for_test

    from pipelines.sync.resources import WarehouseResource, declared_source
    from pipelines_tests.helpers import SAMPLE_DECLARATION, declaration_at
    from pipelines_tests.test_sync_e2e import sync_day

    monkeypatch.setenv("SOURCE_API_TOKEN", "tok-rate")
    server = sample_server(resources=200, rate_limit=40, day=1, token="tok-rate")
    path = declaration_at(SAMPLE_DECLARATION, server.url, tmp_path, {"rate.requests_per_second": 0})
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    store = res["warehouse"].store()
    throttled = []
    with instance_for_test() as instance:
        for day in (1, 2):
            server.configure(day=day)
            server.reset()
            sync_day(res, f"2026-01-0{day}", instance)
            throttled.append(server.stats()["throttled"])
    learned = store.runs.learned_rate(f"http://127.0.0.1:{server.port}")
    print(f"429s: day 1 {throttled[0]}, day 2 {throttled[1]}; learned {learned:.1f}/s")
    assert throttled[0] > 0 and learned is not None and 20 <= learned <= 50  # about the API's 40/s
    assert throttled[1] < throttled[0]
