"""Runs a list of a day's batches: read members and fingerprints, sync, write. No Dagster.

Batches of one step run ``parallelism`` at a time over one client (so its concurrency bound and
rate cover them all); warehouse calls run in a worker thread so they never stall the requests in
flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from pipelines.core.batching import batch_id
from pipelines.core.sync_batch import ProbeStrategy, sync_batch
from pipelines.source.client import CallMeter, SourceApiClient
from pipelines.warehouse.store import BatchRecord, Warehouse, utcnow


@dataclass(frozen=True)
class SyncPlan:
    day: date
    strategy: ProbeStrategy
    probe_fields: Sequence[str]
    fingerprint_fields: Sequence[str]
    run_id: str
    parallelism: int = 2


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    sub_jobs: int
    changed: int
    new: int
    unchanged: int
    gone: int
    failed: int
    calls: int
    seconds: float

    def line(self) -> str:
        return (
            f"batch {self.batch_id}: {self.sub_jobs} sub-jobs, {self.changed} changed ({self.new} new), "
            f"{self.unchanged} unchanged, {self.gone} gone, {self.failed} failed; "
            f"{self.calls} calls (naive {2 * self.sub_jobs}) in {self.seconds:.2f}s"
        )


async def run_batches(
    client: SourceApiClient,
    store: Warehouse,
    plan: SyncPlan,
    batch_nos: Sequence[int],
    on_batch: Callable[[BatchSummary], None] = lambda s: None,
) -> list[BatchSummary]:
    gate = asyncio.Semaphore(plan.parallelism)

    async def one(batch_no: int) -> BatchSummary:
        async with gate:
            return await _run_one(client, store, plan, batch_no)

    summaries = []
    for done in asyncio.as_completed([one(n) for n in batch_nos]):
        summary = await done
        on_batch(summary)
        summaries.append(summary)
    return summaries


async def _run_one(client: SourceApiClient, store: Warehouse, plan: SyncPlan, batch_no: int) -> BatchSummary:
    started = utcnow()
    members = await asyncio.to_thread(store.batch_members, plan.day, batch_no)
    stored = await asyncio.to_thread(store.stored_states, members)
    meter = CallMeter()
    result = await sync_batch(
        client,
        members,
        stored,
        strategy=plan.strategy,
        probe_fields=plan.probe_fields,
        fingerprint_fields=plan.fingerprint_fields,
        meter=meter,
    )
    finished = utcnow()
    record = BatchRecord(plan.day, batch_no, result, meter, started, finished, plan.run_id)
    await asyncio.to_thread(store.record_batch, record)
    counts = result.counts()
    return BatchSummary(
        batch_id=batch_id(plan.day.isoformat(), batch_no),
        sub_jobs=len(members),
        changed=counts["changed"],
        new=counts["new"],
        unchanged=counts["unchanged"],
        gone=counts["gone"],
        failed=counts["failed"],
        calls=meter.total,
        seconds=(finished - started).total_seconds(),
    )
