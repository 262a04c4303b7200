"""``changed_since`` cannot lose changes silently: a change marker from the future moves no
watermark, an API that ignores the filter is noticed (the day is the full listing it was), and a
lagging writer's change, which no filter serves, is caught by the reconcile day."""

from datetime import date, datetime

import pytest
import sqlalchemy as sa
import yaml
from dagster import instance_for_test

from pipelines.core.listing_probe import ListingMode
from pipelines.source.declaration import declare
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines.warehouse.schema import listings
from pipelines_tests.hostile_api import HostileApi
from pipelines_tests.test_sync_e2e import sync_day

IDS = [f"m{i:03d}" for i in range(200)]
D1, D2, D3 = "2026-01-01", "2026-01-02", "2026-01-03"
EARLY = "2026-01-01T00:00:00+00:00"  # every item's marker on day 1: the watermark then


@pytest.fixture
def api():
    server = HostileApi()
    server.mode.listing = list(IDS)
    server.mode.honour_filter = "updated_since"
    yield server
    server.close()


@pytest.fixture
def res(api, tmp_path, sqlite_warehouse_url):
    changes = {
        "probe.strategy": "changed_since",
        "fingerprint": ["updated_at"],
        "probe.fields": ["id", "updated_at"],
        "listing.fields": ["id", "updated_at"],
        "listing.changed_since": {
            "param": "updated_since",
            "cursor_path": "updated_at",
            "overlap_seconds": 3600,
            "reconcile_every_days": 2,
        },
        "bulk_probe": None,
        "conditional": None,
    }
    path = tmp_path / "since.yaml"
    path.write_text(yaml.safe_dump(declare(api.url, changes, name="since").model_dump(mode="json")))
    return {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }


def watermark(store, day: str) -> float | None:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(listings.c.watermark).where(listings.c.partition == date.fromisoformat(day))
        ).scalar_one()


def test_a_marker_from_the_future_moves_no_watermark_and_later_changes_are_seen(api, res):
    store = res["warehouse"].store()
    api.mode.markers = {"m007": "2100-01-01T00:00:00+00:00"}
    with instance_for_test() as instance:
        first = sync_day(res, D1, instance)
        assert first["changed"] == 200
        # the latest plausible marker, never 2100: the API's own Date header said when it is now
        assert watermark(store, D1) == datetime.fromisoformat(EARLY).timestamp()
        api.mode.markers["m042"] = "2026-01-01T06:00:00+00:00"  # a real change on day 2
        api.reset()
        second = sync_day(res, D2, instance)
    since = [t for t in api.targets() if "updated_since=" in t]
    assert since and "2025-12-31T23%3A00%3A00%2B00%3A00" in since[0]  # the watermark less the overlap
    assert second["changed"] == 1 and second["unchanged"] == 199  # m042 seen; the rest unchanged, rightly
    assert store.reports.outcomes_of(date.fromisoformat(D2))["m042"] == "changed"


def test_a_marker_from_the_future_is_reported(api, res):
    from dagster import materialize

    from pipelines_tests.test_sync_e2e import ASSETS, QUIET

    api.mode.markers = {"m007": "2100-01-01T00:00:00+00:00"}
    with instance_for_test() as instance:
        result = materialize(ASSETS, partition_key=D1, resources=res, instance=instance, run_config=QUIET)
        logs = instance.all_logs(result.run_id)
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "watchlist")
    assert event.materialization.metadata["listing_future_markers"].value == 1
    warnings = [e.message for e in logs if e.level >= 30 and "past the API's own present" in e.message]
    assert warnings and "m007 (2100-01-01" in warnings[0]


def test_an_api_that_ignores_the_filter_is_noticed_and_the_day_finds_its_deletions(api, res):
    store = res["warehouse"].store()
    api.mode.honour_filter = None  # a commerce-shaped API without the parameter: it serves everything
    api.mode.markers = {rid: f"2025-{1 + i % 12:02d}-15T00:00:00+00:00" for i, rid in enumerate(IDS)}  # months old
    with instance_for_test() as instance:
        sync_day(res, D1, instance)
        api.mode.listing = IDS[:-3]  # three resources deleted since
        api.mode.status_ids = {rid: 404 for rid in IDS[-3:]}
        second = sync_day(res, D2, instance)
    assert store.ledger.listing_mode(date.fromisoformat(D2)) is ListingMode.FULL  # taken as the full listing it was
    assert second["gone"] == 3 and store.watchlist.watchlist_counts()["active"] == 197
    outcomes = store.reports.outcomes_of(date.fromisoformat(D2))
    assert {outcomes[rid] for rid in IDS[-3:]} == {"gone"}


def test_a_lagging_writers_change_is_missed_by_the_filter_and_caught_by_the_reconcile_day(api, res):
    """The trade-off of overlap_seconds (docs/sources.md): a change stamped earlier than the
    watermark less the overlap is never served by the filter; the reconcile day's full listing
    catches it."""
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        sync_day(res, D1, instance)  # the watermark: EARLY
        api.mode.markers = {"m100": "2025-12-31T21:00:00+00:00"}  # changed, stamped 3 h before it (overlap: 1 h)
        missed = sync_day(res, D2, instance)
        assert missed["changed"] == 0 and store.reports.outcomes_of(date.fromisoformat(D2))["m100"] == "unchanged"
        caught = sync_day(res, D3, instance)  # reconcile_every_days: 2, so day 3 lists everything
    assert store.ledger.listing_mode(date.fromisoformat(D3)) is ListingMode.FULL
    assert caught["changed"] == 1 and store.reports.outcomes_of(date.fromisoformat(D3))["m100"] == "changed"
