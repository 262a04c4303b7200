"""From day 2 on the watchlist listing runs beside the sync, end to end against the hostile API.

The ids already tracked are synced while the listing pages; the ids it finds new (hostile ones
among them) are appended in new batches and synced by the same run; nothing waits for the
listing, nothing is lost when it fails, and a failure of the API as a whole still stops the run.
"""

from datetime import date

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import batch_ledger, listing_handoffs
from pipelines.warehouse.schema import job_set as job_set_table
from pipelines_tests.helpers import api_resource
from pipelines_tests.hostile_api import HostileApi

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
D1, D2 = "2026-01-01", "2026-01-02"
TRACKED = [f"t{i:04d}" for i in range(250)]
NEW = ["new/1", "new?2", "new#3", "..", "new%4"]
REFUSED = "new\nline"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture
def api():
    server = HostileApi()
    server.mode.listing = list(TRACKED)
    yield server
    server.close()


@pytest.fixture
def res(api, pg_warehouse_url):
    return {
        "source_api": api_resource(api.url, {"probe.strategy": "bulk"}),
        "warehouse": WarehouseResource(url=pg_warehouse_url),
    }


def run(res, partition, instance, selection=None):
    return materialize(
        ASSETS,
        partition_key=partition,
        resources=res,
        instance=instance,
        run_config=QUIET,
        selection=selection,
        raise_on_error=False,
    )


def metadata(result, asset: str) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset])
    return {k: v.value for k, v in event.materialization.metadata.items()}


def handoff(store, day: str):
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(listing_handoffs).where(listing_handoffs.c.partition == date.fromisoformat(day))
        ).first()


def batches_of(store, day: str, ids) -> set[int]:
    query = sa.select(job_set_table.c.batch_no).where(
        job_set_table.c.partition == date.fromisoformat(day), job_set_table.c.resource_id.in_(list(ids))
    )
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def test_new_ids_are_synced_by_the_same_run_and_nothing_waits_for_the_listing(api, res):
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        first = run(res, D1, instance)
        assert first.success and "listed" in metadata(first, "watchlist")  # day 1 lists first: nothing is tracked
        api.mode.listing = [*TRACKED, *NEW, REFUSED]
        api.mode.listing_delay = 2.0  # a slow listing: the tracked ids' batches must not wait for it
        api.reset()
        second = run(res, D2, instance)
    assert second.success
    assert metadata(second, "watchlist")["listing"] == "beside the sync"
    synced = metadata(second, "synced_resources")
    assert synced["watchlist_listed"] == len(TRACKED) + len(NEW)
    assert synced["watchlist_refused"] == 1 and synced["watchlist_listing_calls"] == 1
    assert synced["watchlist_listing_error"] == ""
    checks = {e.check_name: e.passed for e in second.get_asset_check_evaluations()}
    assert checks == dict.fromkeys(
        ("listing_complete", "conservation", "synced_share", "spend_ceiling", "dead_letter_rate"), True
    )

    outcomes = store.reports.outcomes_of(date.fromisoformat(D2))
    assert {rid: outcomes.get(rid) for rid in NEW} == dict.fromkeys(NEW, "changed")  # synced today, not tomorrow
    assert sum(o == "unchanged" for o in outcomes.values()) == len(TRACKED) and REFUSED not in outcomes
    assert min(batches_of(store, D2, NEW)) > max(batches_of(store, D2, TRACKED))  # appended after the others

    listed = handoff(store, D2)
    assert listed is not None and listed.finished_at is not None and listed.batch_size == 100
    tracked_batches = batches_of(store, D2, TRACKED)
    with store.engine.connect() as conn:
        finished = conn.execute(
            sa.select(sa.func.max(batch_ledger.c.finished_at)).where(
                batch_ledger.c.partition == date.fromisoformat(D2), batch_ledger.c.batch_no.in_(tracked_batches)
            )
        ).scalar_one()
    assert (listed.finished_at - finished).total_seconds() > 0.5  # synced while the listing still paged

    summary = store.reports.partition_summary(date.fromisoformat(D2))
    targets = api.targets()
    listing_pages = [t for t in targets if t.startswith("/items?") and "ids=" not in t]
    assert summary["listing_calls"] == len(listing_pages) == 1  # written down as the listing's, priced so
    assert summary["calls"] == len(targets) - len(listing_pages)


def test_a_listing_outage_syncs_the_tracked_ids_and_the_next_run_lists_again(api, res):
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        assert run(res, D1, instance).success
        api.mode.listing = [*TRACKED, *NEW]
        api.mode.listing_status = 404  # the listing is down all day (not retried: a 404 is final)
        second = run(res, D2, instance)
        assert second.success  # an outage of the listing does not stop the day
        synced = metadata(second, "synced_resources")
        assert "404" in synced["watchlist_listing_error"]
        outcomes = store.reports.outcomes_of(date.fromisoformat(D2))
        assert set(outcomes) == set(TRACKED) and set(outcomes.values()) == {"unchanged"}
        assert handoff(store, D2).finished_at is None  # still to list

        api.mode.listing_status = None  # the listing is back: the day's next run lists, and syncs only what is new
        api.reset()
        third = run(res, D2, instance)
    assert third.success
    outcomes = store.reports.outcomes_of(date.fromisoformat(D2))
    assert {rid: outcomes[rid] for rid in NEW} == dict.fromkeys(NEW, "changed")
    assert handoff(store, D2).finished_at is not None
    probes = [t for t in api.targets() if t.startswith("/items?ids=")]
    assert len(probes) == 1 and all(rid not in probes[0] for rid in TRACKED)  # the tracked ids were done


def test_a_listing_that_pages_for_ever_stops_incomplete_and_the_day_syncs_what_is_tracked(api, res):
    """A runaway listing stops at its bound and is incomplete: the ids already tracked are synced
    all the same, nothing is deactivated or quarantined, the watchlist's check fails, one alert
    goes out a day, and the day's next run lists again."""
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        assert run(res, D1, instance).success
        api.mode.listing = [*TRACKED, *NEW]
        api.mode.advancing_cursor = "empty"  # empty pages, a new cursor each, for ever
        api.reset()
        result = run(res, D2, instance)
        again = run(res, D2, instance)  # the day's next run lists again, and alerts no more
    assert result.success and again.success
    listing_calls = [t for t in api.targets() if t.startswith("/items?") and "ids=" not in t]
    assert len(listing_calls) == 2 * (1 + 5)  # each run: the first page, then five that added nothing
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["listing_complete"].passed
    assert "5 pages in a row added no new id" in checks["listing_complete"].description
    outcomes = store.reports.outcomes_of(date.fromisoformat(D2))  # what its first page served is kept, and synced
    assert {outcomes[rid] for rid in TRACKED} == {"unchanged"} and {outcomes[rid] for rid in NEW} == {"changed"}
    assert store.queues.dead_letters() == [] and store.watchlist.watchlist_counts()["active"] == len(TRACKED) + len(NEW)
    assert handoff(store, D2).finished_at is None  # still to be listed whole
    with store.engine.connect() as conn:
        kinds = conn.execute(sa.text("SELECT kind FROM alerts WHERE partition = :d"), {"d": D2}).scalars().all()
    assert kinds == ["listing_incomplete"]

    api.mode.advancing_cursor = None  # the API mended: the next run lists whole
    with instance_for_test() as instance:
        mended = run(res, D2, instance)
    assert mended.success
    assert {c.check_name: c.passed for c in mended.get_asset_check_evaluations()}["listing_complete"]
    assert handoff(store, D2).finished_at is not None


def test_the_watchlist_alone_lists_in_place(api, res):
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        assert run(res, D1, instance).success
        api.mode.listing = [*TRACKED, *NEW]
        alone = run(res, D2, instance, selection=[watchlist])
    assert alone.success
    assert metadata(alone, "watchlist")["listed"] == len(TRACKED) + len(NEW)
    assert handoff(store, D2) is None and store.watchlist.watchlist_counts()["active"] == len(TRACKED) + len(NEW)
