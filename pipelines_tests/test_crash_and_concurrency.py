"""Real processes: a run killed with ``kill -9`` and run again, and two runs of one partition at once.

The runs are ``dagster asset materialize`` processes (multiprocess executor, its step processes
in the same process group), on a Dagster instance and a warehouse both in PostgreSQL.
"""

import os
import signal
import time
from datetime import date

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.warehouse.schema import batch_ledger, resources, sub_job_outcomes
from pipelines.warehouse.schema import job_set as job_set_table
from pipelines_tests.helpers import (
    dagster_home_on_postgres,
    materialize_in_process_group,
    postgres_database,
    source_env,
    sync_resources,
)

DAY = "2026-01-01"
N = 3_000
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@pytest.fixture
def setup(sample_server, pg_warehouse_url, tmp_path):
    """A built job set for DAY, and the environment a run process needs."""
    server = sample_server(resources=N, latency_ms=10, day=1)
    res = sync_resources(pg_warehouse_url, server.url)
    with instance_for_test() as instance:
        materialize(
            [watchlist, retry_queue, job_set], partition_key=DAY, resources=res, instance=instance, run_config=QUIET
        )
    with postgres_database("pipelines_dagster") as instance_url:
        env = {
            "DAGSTER_HOME": str(dagster_home_on_postgres(tmp_path / "home", instance_url)),
            **source_env(server.url),
            "WAREHOUSE_URL": pg_warehouse_url,
            "SYNC_CLAIM_LEASE_SECONDS": "3",
            "SYNC_BATCHES_PER_STEP": "10",
        }
        yield server, res["warehouse"].store(), env


def completed(store) -> set[int]:
    with store.engine.connect() as conn:
        query = sa.select(batch_ledger.c.batch_no).where(batch_ledger.c.status == "completed")
        return set(conn.execute(query).scalars())


def sub_jobs_outside(store, batches: set[int]) -> int:
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(job_set_table.c.batch_no.not_in(batches) if batches else sa.true())
        return conn.execute(query).scalar_one()


def assert_day_complete(store):
    c = store.reports.conservation(date.fromisoformat(DAY))
    assert (c["without_outcome"], c["outcomes_without_sub_job"]) == (0, 0)
    assert c["changed"] == N
    assert store.reports.count(sub_job_outcomes) == store.reports.count(resources) == N  # nothing duplicated
    assert completed(store) == set(range(N // 100))


def wait(proc, timeout=300):
    try:
        return proc.wait(timeout=timeout)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def test_kill_9_mid_run_then_a_fresh_run_finishes_the_day(setup, tmp_path):
    server, store, env = setup
    server.reset()
    first = materialize_in_process_group("synced_resources", DAY, env, tmp_path / "first.log")
    deadline = time.monotonic() + 120
    while len(completed(store)) < 4:
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the first run never got going"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the run and its step processes, mid-way
    first.wait()
    done_before = completed(store)
    assert 4 <= len(done_before) < N // 100, "the kill came too late to test anything"
    left = sub_jobs_outside(store, done_before)
    spent_by_the_dead_run = server.stats()["billable"]
    dead_runs_pace = max(n for _, n, _ in server.timeline())  # calls in its busiest second

    server.reset()
    second = materialize_in_process_group("synced_resources", DAY, env, tmp_path / "second.log")
    assert wait(second) == 0, (tmp_path / "second.log").read_text()[-3000:]
    stats = server.stats()
    # completed batches made no call; the others were fetched once (day 1: probe + detail each)
    assert (stats["probe"], stats["detail"]) == (left, left)
    assert_day_complete(store)
    # every call the dead run paid for is in the day's figures: its calls were written down before
    # they were sent, a block at a time (about half a second of its calls, at least 32: the test
    # allows a second's), so at most that block and the 16 requests it had started and not yet put
    # on the wire are counted on top. Before, the batches it had in flight were missing whole.
    paid = spent_by_the_dead_run + stats["billable"]
    recorded = store.reports.partition_summary(date.fromisoformat(DAY))
    print(f"kill -9: the server counted {paid} calls, the day's figures hold {recorded['calls']}")
    assert paid <= recorded["calls"] <= paid + max(32, dead_runs_pace) + 16
    assert recorded["abandoned_calls"] == recorded["calls"] - 2 * N > 0


def test_two_runs_of_one_partition_never_process_a_batch_twice(setup, tmp_path):
    server, store, env = setup
    server.reset()
    runs = [materialize_in_process_group("synced_resources", DAY, env, tmp_path / f"run{i}.log") for i in (1, 2)]
    for i, run in enumerate(runs, start=1):
        assert wait(run) == 0, (tmp_path / f"run{i}.log").read_text()[-3000:]
    stats = server.stats()
    assert (stats["probe"], stats["detail"]) == (N, N)  # every sub-job fetched exactly once between them
    assert_day_complete(store)
    with store.engine.connect() as conn:
        owners = conn.execute(sa.select(sa.func.count(sa.distinct(batch_ledger.c.run_id)))).scalar_one()
    assert 1 <= owners <= 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_syncing_run_within_seconds_and_the_next_run_finishes_the_day(setup, tmp_path, signum):
    """SIGTERM (a pod stopped) or SIGINT (Ctrl-C; the UI's Terminate sends it) to the run's
    process, mid-sync: it stops within seconds, its batches in flight write nothing and give
    their claims back, its calls are written down exactly, and a new run finishes the day."""
    server, store, env = setup
    server.configure(latency_ms=40)  # a slower API: the run is surely mid-sync when signalled
    server.reset()
    log = tmp_path / "stopped.log"
    run = materialize_in_process_group("synced_resources", DAY, {**env, "SYNC_CLAIM_LEASE_SECONDS": "600"}, log)
    deadline = time.monotonic() + 120
    while len(completed(store)) < 2:
        assert run.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    os.kill(run.pid, signum)  # the run's own process, as a pod's stop or the run launcher signals it
    signalled = time.monotonic()
    try:
        run.wait(timeout=20)
    except Exception:
        os.killpg(run.pid, signal.SIGKILL)
        raise AssertionError(f"the run did not stop within 20s of {signum.name}: {log.read_text()[-3000:]}") from None
    stopped_in = time.monotonic() - signalled
    assert run.returncode != 0
    sent = server.stats()["billable"]
    time.sleep(1)
    assert server.stats()["billable"] == sent  # nothing of it calls on
    done = completed(store)
    assert len(done) < N // 100, "the signal came too late to test anything"
    with store.engine.connect() as conn:
        held = conn.execute(
            sa.select(batch_ledger.c.batch_no).where(
                batch_ledger.c.status == "running", batch_ledger.c.lease_expires > sa.func.now()
            )
        ).all()
        spent = conn.execute(sa.text("SELECT calls, final FROM spent_calls WHERE kind = 'sync'")).all()
    assert held == []  # every claim given back, though the lease was 600 s
    assert [final for _, final in spent] == [True] and spent[0][0] == sent  # the calls sent, written down exactly
    print(f"{signum.name}: stopped in {stopped_in:.2f}s after {sent} calls, {len(done)} batches completed")
    assert stopped_in < 10

    server.configure(latency_ms=10)
    server.reset()
    left = sub_jobs_outside(store, done)
    second = materialize_in_process_group("synced_resources", DAY, env, tmp_path / "second.log")
    assert wait(second) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert (server.stats()["probe"], server.stats()["detail"]) == (left, left)  # the rest, each once
    assert_day_complete(store)


def test_sigterm_stops_a_listing_step_and_the_next_run_lists_whole(pg_warehouse_url, tmp_path):
    """The watchlist's listing is stoppable too: a slow listing, SIGTERM after two pages."""
    from pipelines.warehouse.schema import watchlist as watchlist_table
    from pipelines_tests.hostile_api import HostileApi

    api = HostileApi()
    api.mode.listing = [f"id{i:05d}" for i in range(5_000)]
    api.mode.listing_delay = 0.5  # ten pages of 500: five seconds
    try:
        with postgres_database("pipelines_dagster") as instance_url:
            env = {
                "DAGSTER_HOME": str(dagster_home_on_postgres(tmp_path / "home", instance_url)),
                **source_env(api.url),
                "WAREHOUSE_URL": pg_warehouse_url,
            }
            log = tmp_path / "listing.log"
            run = materialize_in_process_group("watchlist", DAY, env, log)
            deadline = time.monotonic() + 120
            while sum("/items?" in t for t in api.targets()) < 2:
                assert run.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the listing never started"
                time.sleep(0.05)
            os.kill(run.pid, signal.SIGTERM)
            signalled = time.monotonic()
            assert wait(run, timeout=20) != 0
            stopped_in = time.monotonic() - signalled
            pages = sum("/items?" in t for t in api.targets())
            time.sleep(1)
            assert sum("/items?" in t for t in api.targets()) == pages  # it lists no further
            engine = sa.create_engine(pg_warehouse_url)
            with engine.connect() as conn:
                spent = conn.execute(sa.text("SELECT calls, final FROM spent_calls WHERE kind = 'listing'")).all()
                kept = conn.execute(sa.select(sa.func.count()).select_from(watchlist_table)).scalar_one()
            print(f"listing: stopped in {stopped_in:.2f}s after {pages} pages, {kept} ids kept")
            assert stopped_in < 5 and pages < 10
            assert spent == [(pages, True)]  # the pages it was served, written down exactly
            assert 0 < kept < 5_000 and kept % 500 == 0  # whole pages kept, nothing half-written

            api.mode.listing_delay = 0
            assert wait(materialize_in_process_group("watchlist", DAY, env, tmp_path / "again.log")) == 0
            with engine.connect() as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(watchlist_table)).scalar_one() == 5_000
            engine.dispose()
    finally:
        api.close()
