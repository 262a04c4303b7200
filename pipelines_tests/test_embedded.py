"""The detail carried by the listing or the bulk probe (``detail.embedded``): on both sample
profiles, over days with changes, deletions and additions, the warehouse holds the API's truth,
details included, and a day costs what the API makes it cost at least: the listing's pages
(or the bulk probes), with no detail call but for a resource whose carried detail is unusable."""

import math
from datetime import date

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.sample_api import SampleApiConfig, World
from pipelines.sample_api.shop import metafields, shop_id
from pipelines.source.declaration_file import DeclarationError, load_declaration
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines.warehouse.schema import resources
from pipelines_tests.helpers import PROFILES, declaration_at, stored, truth
from pipelines_tests.test_sync_e2e import ASSETS, QUIET, sync_day

KNOBS = {"resources": 600, "change_rate": 0.2, "gone_rate": 0.02, "seed": 23}
EMBED = {
    "items": {"carried_by": "listing", "params": {"embed": "details"}, "path": "details", "max_bytes": 16384},
    "shop": {"carried_by": "listing", "params": {"include": "metafields"}, "path": "metafields", "max_bytes": 16384},
}
LISTING_FIELDS = {"items": ["id", "version", "updated_at"], "shop": ["id", "updated_at"]}
BULK = {"items": 100, "shop": 250}  # ids a bulk probe takes


def partition(day: int) -> str:
    return date(2026, 1, day).isoformat()


def setup(profile, changes, sample_server, warehouse_url, tmp_path, monkeypatch, **knobs):
    declared = load_declaration(PROFILES[profile])
    monkeypatch.setenv(declared.client.auth.token_env, "tok-embed")
    server = sample_server(**{**KNOBS, **knobs}, day=1, token="tok-embed")
    path = declaration_at(PROFILES[profile], server.url, tmp_path, changes)
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=warehouse_url),
    }
    return server, res


def details_held(store) -> dict[str, object]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(resources.c.resource_id, resources.c.details, resources.c.status))
        return {rid: details for rid, details, status in rows if status == "live"}


def the_detail(profile: str, world: World, rid: str, day: int):
    record = world.record(rid, day)
    return record if profile == "items" else metafields(record)


def api_id(profile: str, rid: str) -> str:
    return rid if profile == "items" else str(shop_id(rid))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_listing_carries_the_details_and_a_day_costs_its_pages(
    profile, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    changes = {
        "probe.strategy": "listing",
        "listing.fields": LISTING_FIELDS[profile],
        "detail.embedded": EMBED[profile],
    }
    server, res = setup(profile, changes, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch)
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        for day, resources_now in ((1, 600), (2, 600), (3, 650)):  # day 3: fifty resources added
            server.configure(day=day, resources=resources_now)
            server.reset()
            figures = sync_day(res, partition(day), instance, batches_per_step=100)
            stats = server.stats()
            world = World(SampleApiConfig(**{**KNOBS, "resources": resources_now}))
            live = truth(profile, world, day)
            rows = stored(store)
            assert {rid: fp for rid, (status, fp) in rows.items() if status == "live"} == live
            held = details_held(store)
            by_api_id = {api_id(profile, rid): rid for rid in world.ids(day)}
            assert {rid: held[rid] for rid in live} == {
                rid: the_detail(profile, world, by_api_id[rid], day) for rid in live
            }  # every live resource's detail is the API's, taken from the listing
            lost = set(truth(profile, world, day - 1)) - set(live) if day > 1 else set()
            assert stats["detail"] == 0  # no detail call at all
            assert figures["details_embedded"] == figures["changed"] > 0
            probes = stats["probe"] + stats["bulk_probe"]
            assert probes == math.ceil(len(lost) / BULK[profile])  # what it lost, probed together
            assert figures["gone"] == len(lost)
            assert figures["calls_made"] == probes  # the listing's pages, and a probe of what it lost
            assert figures["listing_calls"] == stats["listing"]


def test_a_carried_detail_that_is_unusable_makes_its_own_call(
    sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    """Malformed resources leave the detail out; poison ones carry an invalid one: each makes its
    own detail call, which fails as it would have, to the dead letter."""
    changes = {
        "probe.strategy": "listing",
        "listing.fields": LISTING_FIELDS["items"],
        "detail.embedded": EMBED["items"],
    }
    server, res = setup(
        "items",
        changes,
        sample_server,
        sqlite_warehouse_url,
        tmp_path,
        monkeypatch,
        poison_rate=0.02,
        malformed_rate=0.02,
    )
    store = res["warehouse"].store()
    world = World(SampleApiConfig(**KNOBS, poison_rate=0.02, malformed_rate=0.02))
    bad = {rid for rid in world.ids(1) if world.is_poison(rid) or world.is_malformed(rid)}
    with instance_for_test() as instance:  # the dead letter's share may pass its check: not the point here
        result = materialize(
            ASSETS, partition_key=partition(1), resources=res, instance=instance, run_config=QUIET, raise_on_error=False
        )
        figures = result.output_for_node("synced_resources")
    assert server.stats()["detail"] == len(bad) > 0  # only those, each once
    assert figures["details_embedded"] == len(world.ids(1)) - len(bad)
    assert {d["resource_id"] for d in store.queues.dead_letters()} == bad


def test_the_bulk_probe_carries_the_details(sample_server, sqlite_warehouse_url, tmp_path, monkeypatch):
    embedded = {"carried_by": "bulk_probe", "params": {"embed": "details"}, "path": "details", "max_bytes": 16384}
    changes = {"probe.strategy": "bulk", "detail.embedded": embedded}
    server, res = setup("items", changes, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch)
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        for day in (1, 2):
            server.configure(day=day)
            server.reset()
            figures = sync_day(res, partition(day), instance, batches_per_step=100)
            stats = server.stats()
            assert stats["detail"] == 0 and figures["details_embedded"] == figures["changed"] > 0
            assert figures["calls_made"] == stats["bulk_probe"] == 6  # 600 ids, 100 a call
    world = World(SampleApiConfig(**KNOBS, day=2))
    held = details_held(store)
    assert all(held[rid] == world.record(rid, 2) for rid in world.ids(2))


def test_a_page_of_carried_details_that_cannot_fit_the_cap_is_refused_at_load(tmp_path):
    path = declaration_at(
        PROFILES["items"],
        "http://127.0.0.1:9",
        tmp_path,
        {
            "probe.strategy": "listing",
            "listing.fields": LISTING_FIELDS["items"],
            "detail.embedded": {**EMBED["items"], "max_bytes": 65536},
        },
    )
    with pytest.raises(
        DeclarationError,
        match=r"listing.page_size \(500\) x detail.embedded.max_bytes \(65,536\) is more than client.max_response_bytes \(8,388,608\).*Lower listing.page_size to 128",
    ):
        load_declaration(path)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_an_authoritative_listing_marks_what_it_did_not_serve_gone_without_a_call(
    profile, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    changes = {
        "probe.strategy": "listing",
        "listing.fields": LISTING_FIELDS[profile],
        "listing.authoritative": True,
        "detail.embedded": EMBED[profile],
    }
    server, res = setup(profile, changes, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch)
    with instance_for_test() as instance:
        for day in (1, 2, 3):
            server.configure(day=day)
            server.reset()
            figures = sync_day(res, partition(day), instance, batches_per_step=100)
            world = World(SampleApiConfig(**KNOBS))
            lost = set(truth(profile, world, day - 1)) - set(truth(profile, world, day)) if day > 1 else set()
            stats = server.stats()
            assert stats["billable"] == stats["listing"]  # the day is its listing's pages: nothing else
            assert figures["gone"] == len(lost) and figures["calls_made"] == 0
    rows = stored(res["warehouse"].store())
    assert {rid for rid, (status, _) in rows.items() if status == "live"} == set(truth(profile, world, 3))
