"""Runs a list of a day's batches: claim, read members and fingerprints, sync, route, write. No Dagster.

Batches of one step run ``parallelism`` at a time over one client (so its concurrency bound, rate,
circuit breaker and systemic guard cover them all), after a first batch that runs alone;
warehouse calls run in a worker thread so they never stall the requests in flight.

One batch, one owner: a batch is claimed in the ledger before its first call and its lease is
renewed while it runs. A batch another live run holds is skipped at first and waited for at the
end: it completes (nothing to do) or its owner's lease runs out (it died) and this run takes it.
A batch whose claim is lost while it runs (its renewal finds another owner) stops calling at
once and writes nothing.

When the API fails as a whole (``ApiFailure``: a refused credential, every sub-job failing the
same way) the other batches in flight are cancelled, their claims released, nothing of them is
written, and the failure is raised to the caller, which stops the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from pipelines.core.batching import batch_id
from pipelines.core.ids import id_problem
from pipelines.core.listing_probe import ListingMode
from pipelines.core.meter import CallMeter
from pipelines.core.outcomes import Member
from pipelines.core.ports import BatchRecord, BatchStore, LostClaimError, Prober, utcnow
from pipelines.core.statuses import LedgerStatus, Origin
from pipelines.core.sync_batch import Listed, ProbeStrategy, probe_together, sync_batch, unserved_need
from pipelines.core.systemic import GuardPolicy, SystemicGuard
from pipelines.core.tasks import gather_or_fail
from pipelines.core.tiers import route_results

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class SyncPlan:
    day: date
    strategy: ProbeStrategy
    probe_fields: Sequence[str]
    fingerprint_fields: Sequence[str]
    run_id: str
    parallelism: int = 8
    retry_budget_days: int = 3
    lease_seconds: float = 60.0
    force: bool = False
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    authoritative: bool = False  # listing.authoritative: a complete listing's unserved ids are gone


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
    client: Prober,
    store: BatchStore,
    plan: SyncPlan,
    batch_nos: Sequence[int],
    on_batch: Callable[[BatchSummary], None] = lambda s: None,
    ahead: Awaitable[Sequence[int]] | None = None,
) -> list[BatchSummary]:
    """Run the batches in order, ``parallelism`` at a time. ``ahead``: batches known later (the
    ids a listing beside the sync found new), run before every batch not yet started once
    known: when a spending ceiling binds, new ids go first."""
    guard = SystemicGuard(plan.guard)
    summaries: list[BatchSummary] = []
    probed, probing = await _unserved_probed(client, store, plan, batch_nos, guard)

    async def one(batch_no: int) -> bool:
        """Sync the batch if it can be claimed; False when another owner holds it. The calls
        that probed the listing's unserved ids together are the first batch's to account for."""
        nonlocal probing
        summary = await _run_one(client, store, plan, batch_no, guard, probed, probing)
        probing = None if summary is not None else probing
        if summary is not None:
            on_batch(summary)
            summaries.append(summary)
        return summary is not None

    # The first batch runs alone (it has every request slot to itself, so it is hardly slower):
    # a fault shared by every resource then costs one batch's calls before the guard stops the
    # step, whichever call it shows in; four batches in flight would all have sent their probes.
    held, rest = [], deque(batch_nos)
    try:
        while rest:
            first = rest.popleft()
            if await one(first):
                break
            held.append(first)
    except BaseException:
        if asyncio.iscoroutine(ahead):
            ahead.close()  # never started: the failure stops it too
        raise
    held += await _in_order(one, rest, plan.parallelism, ahead)
    while held:  # held by another run: wait until completed there, or until its lease runs out
        status = await asyncio.to_thread(store.ledger_status, plan.day, held)
        held = [n for n in held if status.get(n, ("", None))[0] != LedgerStatus.COMPLETED]
        if not held:
            break
        await asyncio.sleep(min(5.0, plan.lease_seconds / 4))
        held = await _in_order(one, deque(held), plan.parallelism)
    return summaries


async def _in_order(
    one: Callable[[int], Awaitable[bool]],
    queue: deque[int],
    workers: int,
    ahead: Awaitable[Sequence[int]] | None = None,
) -> list[int]:
    """Run ``one`` over the queue, ``workers`` at a time, in its order; the batches ``ahead``
    answers go to its front once it answers. Answers the batches another owner held. The first
    failure cancels every batch in flight (``gather_or_fail``)."""
    held: list[int] = []
    known = asyncio.Event()

    async def arrive() -> None:
        try:
            if ahead is not None:
                queue.extendleft(reversed(list(await ahead)))
        finally:
            known.set()

    async def worker() -> None:
        while True:
            if not queue:
                if known.is_set():
                    return
                await known.wait()
                continue
            n = queue.popleft()
            if not await one(n):
                held.append(n)

    await gather_or_fail(arrive(), *(worker() for _ in range(workers)))
    return held


class _Claim:
    """A running batch's claim: its lease renewed until the batch ends, or lost to another run."""

    def __init__(self, store: BatchStore, plan: SyncPlan, batch_no: int, token: str) -> None:
        self.store, self.plan, self.batch_no, self.token = store, plan, batch_no, token
        self.lost = False

    async def keep(self, work: asyncio.Task) -> None:
        """Renew the lease every third of it; when the renewal finds another owner, cancel
        ``work`` at once (it must neither call on nor write)."""
        plan = self.plan
        while True:
            await asyncio.sleep(plan.lease_seconds / 3)
            try:
                mine = await asyncio.to_thread(
                    self.store.renew_claim, plan.day, self.batch_no, self.token, plan.lease_seconds, utcnow()
                )
            except Exception:  # the warehouse is unreachable: the write at the end will tell
                continue
            if not mine:
                self.lost = True
                work.cancel(f"the claim on batch {self.batch_no} was taken over")
                return

    async def give_back(self) -> None:
        """The batch stops without writing: its claim is free for any run at once. The release
        is submitted at once and shielded: a second cancellation cannot lose it."""
        if not self.lost:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    _submit(self.store.release_claim, self.plan.day, self.batch_no, self.token, utcnow())
                )


def _submit(fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
    """``fn(*args)`` in the default executor, submitted now (``asyncio.to_thread`` submits only
    once its coroutine first runs, which a cancellation can prevent)."""
    return asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


def _release_if_claimed(done: asyncio.Future, store: BatchStore, plan: SyncPlan, batch_no: int, token: str) -> None:
    if not done.cancelled() and done.exception() is None and done.result():
        with contextlib.suppress(Exception):  # quick, rare, and possibly while the loop shuts down
            store.release_claim(plan.day, batch_no, token, utcnow())


def _listed(
    store: BatchStore, day: date, members: Sequence[Member], authoritative: bool, probed: Mapping[str, Any]
) -> Listed:
    """What the day's listing said of these members (nothing, when no listing finished today:
    then every member is probed), and what probing the ids it did not serve together answered."""
    mode = store.listing_mode(day)
    if mode is None:
        return Listed()
    served = store.listed(day, [m.resource_id for m in members])
    return Listed(
        fingerprints={rid: fp for rid, (fp, _, _) in served.items()},
        changed_only=mode is ListingMode.CHANGED,
        must_probe=frozenset(m.resource_id for m in members if m.origin != Origin.WATCHLIST),
        records={rid: projected for rid, (_, projected, _) in served.items() if projected is not None},
        details={rid: detail for rid, (_, _, detail) in served.items() if detail is not None},
        authoritative=authoritative and mode is ListingMode.FULL,
        probed=probed,
    )


async def _unserved_probed(
    client: Prober, store: BatchStore, plan: SyncPlan, batch_nos: Sequence[int], guard: SystemicGuard
) -> tuple[Mapping[str, Any], CallMeter | None]:
    """Under the listing strategies, the ids of these batches that the day's listing did not
    serve and that need a probe, probed together, a bulk call per ``bulk_size`` (one a batch
    otherwise), and the calls it took. Nothing without a bulk probe: one call an id either way."""
    if plan.strategy not in (ProbeStrategy.LISTING, ProbeStrategy.CHANGED_SINCE) or client.bulk_size is None:
        return {}, None
    mode = await asyncio.to_thread(store.listing_mode, plan.day)
    members = await asyncio.to_thread(store.members_of, plan.day, list(batch_nos)) if mode is not None else []
    if not members:
        return {}, None
    ids = [m.resource_id for m in members if id_problem(m.resource_id, client.id_type) is None]
    listed = await asyncio.to_thread(store.listed_ids, plan.day, ids)
    stored = await asyncio.to_thread(store.stored_states, [rid for rid in ids if rid not in listed])
    outline = Listed(  # what the listing says of each id, without its fields
        fingerprints=dict.fromkeys(listed, ""),
        changed_only=mode is ListingMode.CHANGED,
        must_probe=frozenset(m.resource_id for m in members if m.origin != Origin.WATCHLIST),
        authoritative=plan.authoritative and mode is ListingMode.FULL,
    )
    wanted = [rid for rid in ids if unserved_need(outline, rid, stored) == "probe" and client.bulk_safe(rid)]
    if len(wanted) < 2:
        return {}, None
    meter = CallMeter()
    answers = await probe_together(
        client,
        wanted,
        probe_fields=plan.probe_fields,
        fingerprint_fields=plan.fingerprint_fields,
        meter=meter,
        guard=guard,
    )
    return answers, meter


async def _run_one(
    client: Prober,
    store: BatchStore,
    plan: SyncPlan,
    batch_no: int,
    guard: SystemicGuard,
    probed: Mapping[str, Any],
    probing: CallMeter | None,
) -> BatchSummary | None:
    token = uuid.uuid4().hex
    started = utcnow()
    claiming = _submit(
        store.claim_batch, plan.day, batch_no, plan.run_id, token, plan.lease_seconds, started, plan.force
    )
    try:
        claimed = await asyncio.shield(claiming)
    except asyncio.CancelledError:  # stopped while claiming: a claim that goes through is given back
        claiming.add_done_callback(lambda f: _release_if_claimed(f, store, plan, batch_no, token))
        raise
    if not claimed:
        return None
    meter = CallMeter()
    if probing is not None:
        meter.add(probing)  # the step's probes of the listing's unserved ids, counted once
    claim = _Claim(store, plan, batch_no, token)
    work = asyncio.current_task()
    assert work is not None
    keeper = asyncio.create_task(claim.keep(work))
    try:
        members = await asyncio.to_thread(store.batch_members, plan.day, batch_no)
        ids = [m.resource_id for m in members]
        stored = await asyncio.to_thread(store.stored_states, ids)
        listed = None
        if plan.strategy in (ProbeStrategy.LISTING, ProbeStrategy.CHANGED_SINCE):
            listed = await asyncio.to_thread(_listed, store, plan.day, members, plan.authoritative, probed)
        raw = await sync_batch(
            client,
            ids,
            stored,
            strategy=plan.strategy,
            probe_fields=plan.probe_fields,
            fingerprint_fields=plan.fingerprint_fields,
            meter=meter,
            guard=guard,
            listed=listed,
        )
        by_id = {m.resource_id: m for m in members}
        result = route_results(raw, by_id, plan.retry_budget_days)
        finished = utcnow()
        record = BatchRecord(
            partition=plan.day,
            batch_no=batch_no,
            result=result,
            members=by_id,
            meter=meter,
            started_at=started,
            finished_at=finished,
            run_id=plan.run_id,
            claim_token=token,
        )
        keeper.cancel()
        await asyncio.to_thread(store.record_batch, record)
    except LostClaimError:  # taken over while we worked (our lease ran out): the write was rolled back
        keeper.cancel()
        return None
    except asyncio.CancelledError:
        keeper.cancel()
        await claim.give_back()
        if claim.lost and work.uncancel() == 0:
            return None  # another run owns the batch now; it is waited for like any held batch
        raise
    except BaseException:
        keeper.cancel()
        await claim.give_back()
        raise
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
