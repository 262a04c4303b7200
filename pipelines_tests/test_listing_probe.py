"""The listing as the probe (``listing``, ``changed_since``), on both sample profiles, each
configured by YAML alone, over days with changes and deletions: exact against the API's truth,
and a day costs its listing pages plus the changed details (plus a probe of ids it lost)."""

from datetime import date

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.core.listing_probe import ListingMode, format_marker, marker_seconds
from pipelines.sample_api import SampleApiConfig, World
from pipelines.source.declaration_file import load_declaration
from pipelines.sync.assets import watchlist
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines_tests.helpers import PROFILES, declaration_at, stored, truth
from pipelines_tests.test_sync_e2e import sync_day

N = 600
KNOBS = {"resources": N, "change_rate": 0.2, "gone_rate": 0.02, "seed": 21}
FILTERS = {
    "items": {
        "param": "updated_since",
        "cursor_path": "updated_at",
        "overlap_seconds": 3600,
        "reconcile_every_days": 2,
    },
    "shop": {
        "param": "updated_at_min",
        "cursor_path": "updated_at",
        "overlap_seconds": 3600,
        "reconcile_every_days": 2,
    },
}
LISTING_FIELDS = {"items": ["id", "version", "updated_at"], "shop": ["id", "updated_at"]}


def partition(day: int) -> str:
    return date(2026, 1, day).isoformat()


def setup(profile, strategy, sample_server, warehouse_url, tmp_path, monkeypatch, reconcile_every_days=2):
    declared = load_declaration(PROFILES[profile])
    monkeypatch.setenv(declared.client.auth.token_env, "tok-listing")
    server = sample_server(**KNOBS, day=1, token="tok-listing")
    changes = {"probe.strategy": strategy, "listing.fields": LISTING_FIELDS[profile]}
    if strategy == "changed_since":
        changes["listing.changed_since"] = {**FILTERS[profile], "reconcile_every_days": reconcile_every_days}
    path = declaration_at(PROFILES[profile], server.url, tmp_path, changes)
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=warehouse_url),
    }
    return server, res, World(SampleApiConfig(**KNOBS))


def day_of(server, res, instance, day: int) -> tuple[dict, dict]:
    server.configure(day=day)
    server.reset()
    figures = sync_day(res, partition(day), instance)
    return figures, server.stats()


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_daily_listing_is_the_probe(profile, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch):
    server, res, world = setup(profile, "listing", sample_server, sqlite_warehouse_url, tmp_path, monkeypatch)
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        for day in (1, 2):
            figures, stats = day_of(server, res, instance, day)
            live = truth(profile, world, day)
            rows = stored(store)
            assert {rid: fp for rid, (status, fp) in rows.items() if status == "live"} == live
            lost = set(truth(profile, world, day - 1)) - set(live) if day > 1 else set()
            assert {rid for rid, (status, _) in rows.items() if status == "gone"} >= lost
            changed = sum(world.changed_on(rid, day) for rid in world.ids(day)) if day > 1 else len(live)
            assert stats["detail"] == figures["changed"] == changed
            assert figures["gone"] == len(lost)
            probes = stats.get("probe", 0) + stats.get("bulk_probe", 0)
            assert probes <= len(lost) and (probes > 0) == bool(lost)  # only the ids the listing lost
            assert figures["calls_made"] == probes + changed and figures["listing_calls"] == stats["listing"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_changed_since_reads_only_what_changed_and_reconciles(
    profile, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    server, res, world = setup(profile, "changed_since", sample_server, sqlite_warehouse_url, tmp_path, monkeypatch)
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        full, _ = day_of(server, res, instance, 1)
        assert full["changed"] == len(truth(profile, world, 1))  # the first day: everything, not a page of it
        for day in (2, 3):
            figures, stats = day_of(server, res, instance, day)
            live = truth(profile, world, day)
            rows = stored(store)
            for rid, fp in live.items():  # every live resource holds today's truth
                assert rows[rid] == ("live", fp), (day, rid)
            changed = sum(world.changed_on(rid, day) for rid in world.ids(day))
            assert stats["detail"] == figures["changed"] == changed
            reconciling = day == 3  # day index 2, every 2 days: the whole listing, deletions seen
            assert store.ledger.listing_mode(date(2026, 1, day)) == (
                ListingMode.FULL if reconciling else ListingMode.CHANGED
            )
            if reconciling:
                assert {rid for rid, (status, _) in rows.items() if status == "live"} == set(live)
            else:  # only the changed items' pages, no probe at all
                assert stats.get("probe", 0) + stats.get("bulk_probe", 0) == 0
                page = load_declaration(PROFILES[profile]).listing.page_size
                assert stats["listing"] <= 2 + changed * 2 // page  # changed items, plus the overlap's re-reads
                assert figures["calls_made"] == changed


def test_a_day_that_did_not_sync_does_not_move_the_watermark(
    sample_server, sqlite_warehouse_url, tmp_path, monkeypatch
):
    profile = "items"
    server, res, world = setup(
        profile, "changed_since", sample_server, sqlite_warehouse_url, tmp_path, monkeypatch, reconcile_every_days=7
    )
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        day_of(server, res, instance, 1)
        watermark_1 = store.listings.watermark_before(date(2026, 1, 2))
        server.configure(day=2)
        listed = materialize([watchlist], partition_key=partition(2), resources=res, instance=instance)
        assert listed.success  # day 2 listed, never synced
        assert store.listings.watermark_before(date(2026, 1, 3)) == watermark_1
        figures, _ = day_of(server, res, instance, 3)
    since = (
        store.engine.connect().execute(sa.text("SELECT since FROM listings WHERE partition = '2026-01-03'")).scalar()
    )
    assert marker_seconds(since) == watermark_1 - 3600 and since == format_marker(watermark_1 - 3600)
    changed_2_or_3 = sum(world.changed_on(r, 2) or world.changed_on(r, 3) for r in world.ids(3))
    assert figures["changed"] == changed_2_or_3  # day 2's changes are caught on day 3, not lost
    rows = stored(store)
    assert all(rows[rid] == ("live", fp) for rid, fp in truth(profile, world, 3).items())


def test_an_incomplete_listing_probe_is_partial_it_assumes_nothing_unchanged_or_gone(tmp_path, sqlite_warehouse_url):
    """Day 2's listing shifts its order between pages (an unstable sort) and lists some ids twice,
    others never: it cannot account for its items, so the ids it served are used, every other
    id is probed (found unchanged, none assumed gone), and the watchlist's check fails."""
    import yaml

    from pipelines.source.declaration import declare
    from pipelines_tests.hostile_api import HostileApi

    api = HostileApi()
    api.mode.listing = [f"h{i:03d}" for i in range(300)]
    api.mode.listing_style = "offset"
    changes = {
        "probe.strategy": "listing",
        "listing.fields": ["id", "version", "updated_at"],
        "listing.paginator": {"type": "offset"},
        "listing.page_size": 100,
        "bulk_probe": None,
        "conditional": None,
    }
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(declare(api.url, changes, name="hostile").model_dump(mode="json")))
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    store = res["warehouse"].store()
    try:
        with instance_for_test() as instance:
            first = sync_day(res, partition(1), instance)
            assert first["changed"] == 300
            api.mode.unstable_order = True
            api.reset()
            second = sync_day(res, partition(2), instance)
            listed = store.listings.listing_account(date.fromisoformat(partition(2)))
            probed = [t for t in api.targets() if t.startswith("/items/h")]
    finally:
        api.close()
    assert not listed["complete"] and "served twice" in listed["problem"]
    assert store.ledger.listing_mode(date.fromisoformat(partition(2))) is ListingMode.PARTIAL
    assert len(probed) == 300 - listed["distinct_ids"] > 0  # only the ids it did not serve, each once
    assert (second["unchanged"], second["gone"], second["changed"]) == (300, 0, 0)
    assert store.watchlist.watchlist_counts()["active"] == 300
