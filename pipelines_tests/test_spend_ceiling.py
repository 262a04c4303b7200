"""Spend has a ceiling that no failure can pass: the day's calls (and money) of a source, granted
before they are sent, shared by every client, step, run and worker; at the ceiling no call goes
out, the rest of the day goes to the retry queue unsent (first tomorrow), an alert goes out and
the run ends on a failed check. And a throttled API slows the client as a whole."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import date

import pytest
import sqlalchemy as sa
import yaml
from dagster import instance_for_test, materialize

from pipelines.core.ceiling import SpendPolicy, per_id_need
from pipelines.core.errors import ErrorClass, SourceError
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines.source.config import Credentials
from pipelines.source.declaration import declare
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import job_set as job_set_table
from pipelines.warehouse.schema import retry_queue as retry_queue_table
from pipelines.warehouse.schema import spent_calls
from pipelines.warehouse.store import Warehouse, create_warehouse_engine
from pipelines_tests.helpers import dagster_home_on_postgres, materialize_in_process_group, postgres_database
from pipelines_tests.hostile_api import HostileApi

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
D1, D2 = "2026-01-01", "2026-01-02"
IDS = [f"c{i:04d}" for i in range(300)]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

# -- the rule, pure --------------------------------------------------------------------------


def test_the_derived_ceiling_covers_a_day_of_every_id_new_with_headroom():
    projected = SpendPolicy(per_id=per_id_need("projected", 100), page_size=500)
    assert projected.need(30_000) == 60_000 + 61  # a probe and a detail each, the listing's pages
    assert projected.ceiling(30_000).calls == 1_000 + 90_092
    bulk = SpendPolicy(per_id=per_id_need("bulk", 100), page_size=500)
    assert bulk.need(30_000) == 30_300 + 61
    assert SpendPolicy(per_id=2, max_calls=500).ceiling(10**6).calls == 500  # declared: whatever is tracked
    assert SpendPolicy(per_id=2, max_cost=3.5).ceiling(10).cost == 3.5


# -- the warehouse's grants: one ceiling for every client ----------------------------------------


def test_clients_in_many_threads_never_pass_the_ceiling_together(warehouse_url):
    store = Warehouse(create_warehouse_engine(warehouse_url))
    day = date(2026, 1, 1)
    policy = SpendPolicy(per_id=2, max_calls=1_000)
    granted: dict[str, int] = {}

    def client(token: str) -> None:
        asked = 0
        while True:
            asked += 37
            grant = store.spend.record_spent(day, "sync", token, "run", asked, False, 0.0, policy)
            if grant.ceiling is not None:
                granted[token] = grant.calls
                return

    threads = [threading.Thread(target=client, args=(f"client-{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted.values()) == 1_000  # up to the ceiling exactly, never past it
    store.spend.record_spent(day, "sync", "client-0", "run", 10, True, 0.0, policy)  # closes having sent 10
    freed = granted["client-0"] - 10
    grant = store.spend.record_spent(day, "sync", "late", "run", freed + 1, False, 0.0, policy)
    assert grant.calls == freed and grant.ceiling is not None  # what it gave back is granted again, no more


def test_a_derived_ceiling_follows_the_ids_the_day_tracks(sqlite_warehouse_url):
    """Worked out from the ids tracked: a count taken before the day's listing wrote its ids
    (nothing tracked yet) is counted again before a grant is refused on it."""
    store = Warehouse(create_warehouse_engine(sqlite_warehouse_url))
    day = date(2026, 1, 1)
    policy = SpendPolicy(per_id=2, page_size=500, floor=10, headroom=1.0)
    first = store.spend.record_spent(day, "listing", "lister", "run", 1, False, 0.0, policy)
    assert first.calls == 1 and first.ceiling is None  # nothing tracked: the floor's 11 calls
    store.watchlist.upsert_watchlist([f"w{i:04d}" for i in range(1_000)], "listing", day)
    grant = store.spend.record_spent(day, "sync", "syncer", "run", 2_000, False, 0.0, policy)
    assert grant.calls == 2_000 and grant.ceiling is None  # 10 + 2,000 + 3 pages: the ids written since count
    assert store.spend.record_spent(day, "sync", "syncer", "run", 2_100, False, 0.0, policy).calls == 2_012


def test_a_money_ceiling_counts_each_call_at_its_price(sqlite_warehouse_url):
    store = Warehouse(create_warehouse_engine(sqlite_warehouse_url))
    day = date(2026, 1, 1)
    policy = SpendPolicy(per_id=2, max_cost=1.0)  # one unit of money; a detail call costs 0.004
    grant = store.spend.record_spent(day, "sync", "a", "run", 1_000, False, 1_000 * 0.004, policy)
    assert grant.calls == 250 and grant.ceiling is not None and grant.ceiling.cost == 1.0
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(spent_calls.c.cost))).scalar_one() == pytest.approx(1.0)


# -- a day against the hostile API -----------------------------------------------------------


@pytest.fixture
def api():
    server = HostileApi()
    server.mode.listing = list(IDS)
    yield server
    server.close()


def declared(api: HostileApi, tmp_path, changes: dict) -> str:
    base = {"probe.strategy": "projected", "bulk_probe": None, "conditional": None, "listing.page_size": 500}
    path = tmp_path / f"source-{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(declare(api.url, {**base, **changes}, name="capped").model_dump(mode="json")))
    return str(path)


def run(res, partition, instance):
    return materialize(
        ASSETS, partition_key=partition, resources=res, instance=instance, run_config=QUIET, raise_on_error=False
    )


def test_at_the_ceiling_no_call_goes_out_and_the_rest_of_the_day_waits_first_in_line(api, tmp_path, pg_warehouse_url):
    res = {
        "source_api": declared_source(declared(api, tmp_path, {"spend.max_calls": 151})),
        "warehouse": WarehouseResource(url=pg_warehouse_url),
    }
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        first = run(res, D1, instance)
        sent = len(api.targets())
        again = run(res, D1, instance)  # the day's next run: the ceiling holds, nothing more goes out
    assert sent == 151 and len(api.targets()) == 151  # one listing page, then 150 calls of the sync
    assert not first.success  # the run ends on its blocking check, saying why
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert not checks["spend_ceiling"].passed and "151 calls" in checks["spend_ceiling"].description
    assert checks["conservation"].passed  # every sub-job accounted for
    synced = next(e for e in first.get_asset_materialization_events() if e.asset_key.path[-1] == "synced_resources")
    plotted = {k: v.value for k, v in synced.materialization.metadata.items()}
    assert (plotted["deferred_by_ceiling"], plotted["ceiling_reached"], plotted["calls_made"]) == (250, 1, 150)
    outcomes = store.reports.outcomes_of(date.fromisoformat(D1))
    assert len(outcomes) == 300 and sorted(set(outcomes.values())) == ["changed", "retry"]
    assert sum(o == "changed" for o in outcomes.values()) == 50  # batch 0: 100 probes, then 50 details
    with store.engine.connect() as conn:
        queued = conn.execute(sa.select(retry_queue_table.c.error_class, retry_queue_table.c.tier2_days_used)).all()
        alerts = conn.execute(sa.text("SELECT kind FROM alerts")).scalars().all()
    assert len(queued) == 250 and set(queued) == {("spend_ceiling", 0)}  # deferred, not a day of tier 2 spent
    assert store.queues.dead_letters() == []
    # once a day, however many runs; the second run does not list again: every batch of the day completed
    assert alerts == ["spend_ceiling"]
    assert not again.success

    api.reset()  # the next day: what the ceiling deferred goes first, and the day has its own ceiling
    with instance_for_test() as instance:
        run(res, D2, instance)
    with store.engine.connect() as conn:
        first_batches = conn.execute(
            sa.select(job_set_table.c.resource_id, job_set_table.c.origin).where(
                job_set_table.c.partition == date.fromisoformat(D2), job_set_table.c.batch_no < 2
            )
        ).all()
    deferred = {rid for rid, outcome in outcomes.items() if outcome == "retry"}
    assert {rid for rid, _ in first_batches} <= deferred and {o for _, o in first_batches} == {"retry"}


def test_two_runs_at_once_share_one_ceiling(api, tmp_path, pg_warehouse_url):
    """Two processes syncing one day together spend within the one ceiling."""
    path = declared(api, tmp_path, {"spend.max_calls": 301, "operations.batch_size": 10})
    with postgres_database("pipelines_dagster") as instance_url:
        env = {
            "DAGSTER_HOME": str(dagster_home_on_postgres(tmp_path / "home", instance_url)),
            "SOURCE_DECLARATION": path,
            "WAREHOUSE_URL": pg_warehouse_url,
        }
        listed = materialize_in_process_group("watchlist,retry_queue,job_set", D1, env, tmp_path / "setup.log")
        assert listed.wait(timeout=120) == 0, (tmp_path / "setup.log").read_text()[-3000:]
        api.reset()
        api.mode.delay = 0.4  # a slow API: both runs are calling at once (300 calls: 8 s at 16 in flight)
        runs = [materialize_in_process_group("synced_resources", D1, env, tmp_path / f"run{i}.log") for i in (1, 2)]
        for proc in runs:
            proc.wait(timeout=300)
    assert len(api.targets()) == 300  # the listing's page spent one of the 301
    store = WarehouseResource(url=pg_warehouse_url).store()
    with store.engine.connect() as conn:
        runs_spending = conn.execute(sa.select(sa.func.count(sa.distinct(spent_calls.c.run_id)))).scalar_one()
    assert runs_spending == 3  # the listing's run and both syncing runs drew on it
    assert store.reports.conservation(date.fromisoformat(D1))["without_outcome"] == 0


# -- the throttled client ----------------------------------------------------------------------


def client_calls(api: HostileApi, changes: dict, n: int = 300):
    """``n`` probes at once through one client; their answers (or errors) and the client."""
    source = declare(api.url, {"bulk_probe": None, "conditional": None, **changes})
    settings = ClientSettings(api.url, source, Credentials())

    async def go():
        async with SourceApiClient(settings) as client:

            async def one(rid):
                try:
                    return await client.probe(rid)
                except SourceError as exc:
                    return exc

            started = time.monotonic()
            answers = await asyncio.gather(*(one(rid) for rid in IDS[:n]))
            return answers, client, time.monotonic() - started

    return asyncio.run(go())


def test_a_retry_after_of_zero_on_every_call_defers_the_day_after_a_bounded_few(api):
    """Before: each of 300 calls stopped after 21 throttled attempts, the day never (727
    requests in 11.5 minutes without completing a batch)."""
    api.mode.retry_after = "0"
    answers, client, seconds = client_calls(api, {"errors.min_throttle_wait": 0.1})
    sent = len(api.targets())
    assert {a.error_class for a in answers if isinstance(a, SourceError)} == {ErrorClass.DEFERRED}
    assert all(isinstance(a, SourceError) for a in answers)
    assert client.throttle.deferred is not None and "in a row" in client.throttle.deferred
    assert sent == 32  # 32 in a row (twice the concurrency); the calls still waiting were never sent
    print(f"Retry-After '0': {sent} requests in {seconds:.1f}s, then the day deferred")


@pytest.mark.parametrize("retry_after", ["-5", "NaN", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
def test_a_retry_after_of_nonsense_is_floored_for_the_client_and_bounded(api, retry_after):
    api.mode.retry_after = retry_after
    changes = {"errors.min_throttle_wait": 0.1, "errors.max_throttled_in_a_row": 6}
    answers, client, seconds = client_calls(api, changes)
    sent = len(api.targets())
    assert {a.error_class for a in answers} == {ErrorClass.DEFERRED}
    assert sent <= 16 and seconds < 15  # six in a row, past the first burst already in flight (16 at once)


def test_a_retry_after_longer_than_the_bound_pauses_and_defers_instead_of_hammering(api):
    api.mode.retry_after = "86400"
    answers, client, seconds = client_calls(api, {"errors.max_throttle_wait": 600})
    sent = len(api.targets())
    assert {a.error_class for a in answers} == {ErrorClass.DEFERRED}
    assert "longer than errors.max_throttle_wait" in client.throttle.deferred
    assert sent <= 16  # the calls already in flight when the first 429 came back; then none
    assert seconds < 10


def test_a_throttling_api_that_recovers_is_waited_out(api):
    """Not every 429 is a runaway: a short burst of them is waited out and every call answered."""
    api.mode.retry_after = "0.2"
    threading.Timer(1.0, lambda: setattr(api.mode, "retry_after", None)).start()
    answers, client, _ = client_calls(api, {"errors.min_throttle_wait": 0.2, "rate.max_concurrency": 4}, n=20)
    assert all(not isinstance(a, SourceError) for a in answers)
    assert client.throttle.deferred is None and client.meter.throttled > 0


def test_the_day_after_a_throttled_out_day_the_deferred_go_first(api, tmp_path, sqlite_warehouse_url):
    res = {
        "source_api": declared_source(declared(api, tmp_path, {"errors.min_throttle_wait": 0.05})),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        assert run(res, D1, instance).success
        api.mode.retry_after = "0"
        api.reset()
        second = run(res, D2, instance)
    outcomes = store.reports.outcomes_of(date.fromisoformat(D2))
    assert set(outcomes.values()) == {"retry"} and len(outcomes) == 300
    assert store.reports.error_classes(date.fromisoformat(D2)) == {"deferred": 300}
    assert len(api.targets()) <= 64 and store.queues.dead_letters() == []
    assert second.success  # the completion sensor and synced_share say the day synced nothing
    assert not {c.check_name: c.passed for c in second.get_asset_check_evaluations()}["synced_share"]


# -- a backfill cannot spend many days' calls by accident ----------------------------------------


def test_past_days_are_refused_unless_the_run_opts_in():
    from pipelines.core.past_days import opted_in, past_day_problem

    today = date(2026, 12, 6)
    newest = date(2026, 3, 1)
    assert "older than 2026-03-01, the newest day already synced" in past_day_problem(
        date(2026, 2, 1), newest, today, None
    )
    assert past_day_problem(newest, newest, today, None) is None  # the newest day again: fine
    assert past_day_problem(date(2026, 3, 2), newest, today, None) is None
    assert past_day_problem(date(2026, 2, 1), newest, today, None, started=True) is None  # finishing a day
    assert "older than spend.max_age_days (30)" in past_day_problem(date(2026, 11, 1), None, today, 30)
    assert opted_in({"pipelines/sync_past_day": "true"}) and not opted_in({"pipelines/sync_past_day": "no"})


def test_a_backfill_of_past_days_makes_no_call_unless_opted_in(api, tmp_path, sqlite_warehouse_url):
    res = {
        "source_api": declared_source(declared(api, tmp_path, {})),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    with instance_for_test() as instance:
        assert run(res, D2, instance).success
        api.reset()
        refused = run(res, D1, instance)  # a day before the newest synced, as "Materialize all" would run it
        assert not refused.success and api.targets() == []
        failure = next(e for e in refused.all_events if e.is_step_failure)
        message = str(failure.event_specific_data.error)
        assert "older than 2026-01-02, the newest day already synced" in message
        assert "pipelines/sync_past_day=true" in message  # how to opt in, on the run's page
        opted = materialize(
            ASSETS,
            partition_key=D1,
            resources=res,
            instance=instance,
            run_config=QUIET,
            tags={"pipelines/sync_past_day": "true"},
        )
    assert opted.success and len(api.targets()) > 0
