"""The batch engine's promises when a claim is lost or the API fails, over loopback HTTP."""

import asyncio
from datetime import UTC, date, datetime

import sqlalchemy as sa

from pipelines.core.engine import SyncPlan, run_batches
from pipelines.core.errors import ApiFailure
from pipelines.core.outcomes import BatchResult, Member, Outcome, SubJobResult
from pipelines.core.sync_batch import ProbeStrategy
from pipelines.source.client import CallMeter, SourceApiClient
from pipelines.source.spend import SpendLog
from pipelines.warehouse.schema import batch_ledger, sub_job_outcomes
from pipelines.warehouse.store import BatchRecord, Warehouse, create_warehouse_engine
from pipelines_tests.helpers import client_settings

D1 = date(2026, 1, 1)
IDS = [f"r{i:07d}" for i in range(100)]


def plan(**kw) -> SyncPlan:
    base = dict(
        day=D1,
        strategy=ProbeStrategy.PROJECTED,
        probe_fields=["id", "version", "updated_at"],
        fingerprint_fields=["version"],
        run_id="run-a",
    )
    return SyncPlan(**{**base, **kw})


def one_batch(url: str) -> Warehouse:
    store = Warehouse(create_warehouse_engine(url))
    store.watchlist.upsert_watchlist(IDS, "listing", D1)
    store.job_sets.build_job_set(D1, 100)
    return store


def test_a_batch_that_loses_its_claim_stops_calling_and_writes_nothing(sample_server, pg_warehouse_url):
    server = sample_server(resources=100, latency_ms=150, day=1)  # 100 probes, 2 at a time: 7 s or more
    store = one_batch(pg_warehouse_url)
    settings = client_settings(server.url, {"rate.max_concurrency": 2, "rate.min_concurrency": 1})

    def take_over() -> int:
        """Another run takes the batch (as if run-a's lease had lapsed) and completes it."""
        for _ in range(20):  # run-a may renew between the two statements (it renews every 0.5 s): again
            with store.engine.begin() as conn:
                conn.execute(sa.update(batch_ledger).values(lease_expires=datetime(2000, 1, 1, tzinfo=UTC)))
            now = datetime.now(UTC)
            if store.ledger.claim_batch(D1, 0, "run-b", "tok-b", 60, now):
                break
        else:
            raise AssertionError("run-b never took the batch over")
        results = BatchResult([SubJobResult(rid, Outcome.UNCHANGED, "same") for rid in IDS])
        members = {rid: Member(rid) for rid in IDS}
        store.ledger.record_batch(
            BatchRecord(
                partition=D1,
                batch_no=0,
                result=results,
                members=members,
                meter=CallMeter(),
                started_at=now,
                finished_at=now,
                run_id="run-b",
                claim_token="tok-b",
            )
        )
        return server.stats()["probe"]

    spend = SpendLog(
        lambda calls, cost, final: store.spend.record_spent(D1, "sync", "client-a", "run-a", calls, final, cost)
    )

    async def go():
        async with SourceApiClient(settings, spend=spend) as client:
            work = asyncio.create_task(run_batches(client, store.ledger, plan(lease_seconds=1.5), [0]))
            await asyncio.sleep(1.0)  # run-a's batch is under way
            at_takeover = await asyncio.to_thread(take_over)
            summaries = await asyncio.wait_for(work, 30)
            return summaries, at_takeover, client.meter.total

    summaries, at_takeover, calls = asyncio.run(go())
    assert summaries == []  # run-a wrote nothing: the batch is run-b's
    with store.engine.connect() as conn:
        runs = set(conn.execute(sa.select(sub_job_outcomes.c.run_id)).scalars())
    assert runs == {"run-b"}
    probes = server.stats()["probe"]
    assert probes < 40, "run-a went on calling after losing its claim"
    assert probes - at_takeover <= 10  # at most a renewal period (0.5 s) of calls after it, 2 at a time
    assert store.reports.partition_summary(D1)["abandoned_calls"] == calls == probes  # and they are paid for


def test_an_api_failure_cancels_every_batch_in_flight_and_releases_their_claims(sample_server, sqlite_warehouse_url):
    server = sample_server(resources=1000, token="right-token", latency_ms=20, day=1)
    store = Warehouse(create_warehouse_engine(sqlite_warehouse_url))
    store.watchlist.upsert_watchlist([f"r{i:07d}" for i in range(1000)], "listing", D1)
    store.job_sets.build_job_set(D1, 100)
    settings = client_settings(server.url, token="wrong-token")
    spend = SpendLog(
        lambda calls, cost, final: store.spend.record_spent(D1, "sync", "client-a", "run-a", calls, final, cost)
    )

    async def go():
        async with SourceApiClient(settings, spend=spend) as client:
            try:
                await run_batches(client, store.ledger, plan(parallelism=4), list(range(10)))
            except ApiFailure as exc:
                return exc, client.meter.total
        raise AssertionError("no ApiFailure")

    failure, calls = asyncio.run(go())
    assert failure.kind == "auth_failed"
    assert server.stats()["unauthorized"] == calls <= 16  # the first answers stopped every other call
    with store.engine.connect() as conn:
        ledger = conn.execute(sa.select(batch_ledger.c.status, batch_ledger.c.lease_expires)).all()
    assert ledger and all(status == "running" for status, _ in ledger)  # claimed, never written...
    now = datetime.now(UTC)
    assert all((lease if lease.tzinfo else lease.replace(tzinfo=UTC)) < now for _, lease in ledger), (
        ledger,
        now,
    )  # given back
    assert store.reports.count(sub_job_outcomes) == 0
    assert store.reports.partition_summary(D1)["abandoned_calls"] == calls
