"""Runs a list of a day's batches: claim, read members and fingerprints, sync, route, write. No Dagster.

Batches of one step run ``parallelism`` at a time over one client (so its concurrency bound, rate
and circuit breaker cover them all); warehouse calls run in a worker thread so they never stall
the requests in flight.

One batch, one owner: a batch is claimed in the ledger before its first call and its lease is
renewed while it runs. A batch another live run holds is skipped at first and waited for at the
end: it completes (nothing to do) or its owner's lease runs out (it died) and this run takes it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from pipelines.core.batching import batch_id
from pipelines.core.sync_batch import ProbeStrategy, sync_batch
from pipelines.core.tiers import route_results
from pipelines.source.client import CallMeter, SourceApiClient
from pipelines.warehouse.store import BatchRecord, Warehouse, utcnow


@dataclass(frozen=True)
class SyncPlan:
    day: date
    strategy: ProbeStrategy
    probe_fields: Sequence[str]
    fingerprint_fields: Sequence[str]
    run_id: str
    parallelism: int = 4
    retry_budget_days: int = 3
    lease_seconds: float = 60.0
    force: bool = False


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    sub_jobs: int
    changed: int
    new: int
    unchanged: int
    gone: int
    retry: int
    dead: int
    calls: int
    seconds: float

    def line(self) -> str:
        return (
            f"batch {self.batch_id}: {self.sub_jobs} sub-jobs, {self.changed} changed ({self.new} new), "
            f"{self.unchanged} unchanged, {self.gone} gone, {self.retry} to retry, {self.dead} dead; "
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
    summaries: list[BatchSummary] = []

    async def one(batch_no: int) -> bool:
        """Sync the batch if it can be claimed; False when another owner holds it."""
        async with gate:
            summary = await _run_one(client, store, plan, batch_no)
        if summary is not None:
            on_batch(summary)
            summaries.append(summary)
        return summary is not None

    held = [n for n, ran in zip(batch_nos, await asyncio.gather(*(one(n) for n in batch_nos)), strict=True) if not ran]
    while held:  # held by another run: wait until completed there, or until its lease runs out
        status = await asyncio.to_thread(store.ledger_status, plan.day, held)
        held = [n for n in held if status.get(n, ("", None))[0] != "completed"]
        if not held:
            break
        await asyncio.sleep(min(5.0, plan.lease_seconds / 4))
        ran = await asyncio.gather(*(one(n) for n in held))
        held = [n for n, r in zip(held, ran, strict=True) if not r]
    return summaries


async def _run_one(client: SourceApiClient, store: Warehouse, plan: SyncPlan, batch_no: int) -> BatchSummary | None:
    token = uuid.uuid4().hex
    started = utcnow()
    claimed = await asyncio.to_thread(
        store.claim_batch, plan.day, batch_no, plan.run_id, token, plan.lease_seconds, started, plan.force
    )
    if not claimed:
        return None
    renewer = asyncio.create_task(_renew(store, plan, batch_no, token))
    try:
        members = await asyncio.to_thread(store.batch_members, plan.day, batch_no)
        ids = [m.resource_id for m in members]
        stored = await asyncio.to_thread(store.stored_states, ids)
        meter = CallMeter()
        raw = await sync_batch(
            client,
            ids,
            stored,
            strategy=plan.strategy,
            probe_fields=plan.probe_fields,
            fingerprint_fields=plan.fingerprint_fields,
            meter=meter,
        )
        by_id = {m.resource_id: m for m in members}
        result = route_results(raw, by_id, plan.retry_budget_days)
        finished = utcnow()
        record = BatchRecord(plan.day, batch_no, result, by_id, meter, started, finished, plan.run_id, token)
        await asyncio.to_thread(store.record_batch, record)
    finally:
        renewer.cancel()
    counts = result.counts()
    return BatchSummary(
        batch_id=batch_id(plan.day.isoformat(), batch_no),
        sub_jobs=len(ids),
        changed=counts["changed"],
        new=counts["new"],
        unchanged=counts["unchanged"],
        gone=counts["gone"],
        retry=counts["retry"],
        dead=counts["dead"],
        calls=meter.total,
        seconds=(finished - started).total_seconds(),
    )


async def _renew(store: Warehouse, plan: SyncPlan, batch_no: int, token: str) -> None:
    while True:
        await asyncio.sleep(plan.lease_seconds / 3)
        await asyncio.to_thread(store.renew_claim, plan.day, batch_no, token, plan.lease_seconds, utcnow())
