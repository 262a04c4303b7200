"""``synced_resources``: the graph that syncs a day's job set, batch by batch.

plan_sync_steps  -> one dynamic step per group of pending batches (batches_per_step of them:
                    every batch in process, where steps run one after another; 50 where
                    they spread over processes or workers, so a 300-batch day is 6 steps,
                    not 300: each step costs the orchestrator about a tenth of a second)
sync_batches     -> runs its batches (probe, change detection, details, one upsert each)
summarize_sync   -> the day's figures from the ledger, as the materialization's metadata

The ledger in the warehouse is the truth about which batches completed: a new run of the
partition skips them (unless ``force``), so it finishes a half-done day without re-fetching.
"""

import asyncio
from typing import TypeVar

from dagster import (
    AssetIn,
    AssetsDefinition,
    Backoff,
    Config,
    DynamicOut,
    DynamicOutput,
    In,
    Jitter,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    RetryPolicy,
    graph_asset,
    op,
)
from pydantic import Field

from pipelines.alerting.channel import AlertRoute
from pipelines.core.batching import chunked
from pipelines.core.engine import BatchSummary, SyncPlan, run_batches
from pipelines.core.log_lines import Coalesced
from pipelines.core.redact import scrub
from pipelines.core.sync_batch import ProbeStrategy
from pipelines.core.systemic import GuardPolicy
from pipelines.settings import load_settings
from pipelines.sync.assets import check_source, default_batch_size, job_set, log_refused
from pipelines.sync.ceiling import report_ceiling
from pipelines.sync.listing_accounts import close_listing
from pipelines.sync.listing_beside import ListedBeside, list_beside
from pipelines.sync.partitions import partition_day, simulated_day
from pipelines.sync.past_days import refuse_past_day
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.sync.stops import halted, run_loop
from pipelines.sync.summary import numbers, tables

T = TypeVar("T")


class PlanConfig(Config):
    force: bool = Field(default=False, description="re-sync batches the ledger already has as completed")
    batches_per_step: int | None = Field(default=None, ge=1, description="unset: SYNC_BATCHES_PER_STEP, or by executor")


class SyncStepConfig(Config):
    """A run's overrides of the deployment's settings (each unset: the setting named, read when the step runs)."""

    parallelism: int | None = Field(
        default=None, ge=1, description="batches in flight per step (SYNC_BATCH_PARALLELISM)"
    )
    retry_budget_days: int | None = Field(default=None, ge=0, description="tier 2 budget in days (RETRY_BUDGET_DAYS)")
    lease_seconds: float | None = Field(
        default=None, ge=1, le=86_400, description="batch claim lease (SYNC_CLAIM_LEASE_SECONDS)"
    )
    systemic_failure_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of one kind of call failing the same way that stops the run (0: off, e.g. for a real mass "
        "deletion; SYNC_SYSTEMIC_FAILURE_RATIO)",
    )
    systemic_window: int | None = Field(default=None, ge=1, description="calls judged together (SYNC_SYSTEMIC_WINDOW)")


def _given(value: T | None, setting: T) -> T:
    return setting if value is None else value


def synced_resources_asset(
    scope: SourceScope, job_set: AssetsDefinition, estimate: str | None = None
) -> AssetsDefinition:
    """One source's ``synced_resources``, its ops named for the source; ``estimate``: what a day
    costs under each strategy (markdown), shown with the asset in the UI."""

    @op(
        name=scope.node("plan_sync_steps"),
        ins={"job_set": In(Nothing)},
        out=DynamicOut(dict),
        required_resource_keys=scope.resource_keys,
    )
    def plan_sync_steps(context: OpExecutionContext, config: PlanConfig):
        day = partition_day(context.partition_key)
        store = scope.store(context)
        refuse_past_day(context, store, scope.api(context).declaration())
        pending = store.job_sets.pending_batches(day, force=config.force)
        handed = store.handoffs.handed_listing(day)
        context.log.info(
            f"{len(pending)} batches to sync for {day}"
            + (", and the watchlist's listing beside them" if handed else "")
        )
        per_step = _given(config.batches_per_step, load_settings().batches_per_step())
        groups = list(chunked(pending, per_step)) or [[]]  # one empty step keeps the graph whole
        for n, group in enumerate(groups):
            key = f"b{group[0]:05d}_{group[-1]:05d}" if group else "none"
            step: dict = {"batches": group, "force": config.force}
            if n == 0 and handed is not None:  # one step lists, and syncs the batches it appends
                step["listing"] = {"batch_size": handed.batch_size, "after": store.job_sets.last_batch_no(day)}
            yield DynamicOutput(step, mapping_key=key)

    @op(
        name=scope.node("sync_batches"),
        retry_policy=RetryPolicy(max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
        pool=scope.api_key,  # every step that calls this source's API, in every run, shares this pool's slots
        required_resource_keys=scope.resource_keys,
    )
    def sync_batches(context: OpExecutionContext, config: SyncStepConfig, step: dict) -> dict:
        """Sync this step's batches. Safe to retry: completed batches are skipped, the rest re-claimed.

        When the API fails as a whole (a refused credential, every sub-job failing the same way),
        the step stops the run: nothing of the batches in flight is written, no resource is
        quarantined, an alert of the failure's kind goes out, and the run's other steps stop
        before calling."""
        return sync_step(context, config, step, scope)

    @op(name=scope.node("summarize_sync"), required_resource_keys=scope.resource_keys)
    def summarize_sync(context: OpExecutionContext, steps: list) -> dict:
        day = partition_day(context.partition_key)
        store = scope.store(context)
        s = store.reports.partition_summary(day)
        figures = numbers(s, sum(step["calls"] for step in steps), scope.api(context).declaration().cost)
        classes = store.reports.error_classes(day, limit=100)
        figures["deferred_by_ceiling"] = classes.get("spend_ceiling", 0)  # sub-jobs sent to tomorrow unsent
        figures["deferred_by_throttling"] = classes.get("deferred", 0)
        figures["ceiling_reached"] = int(store.spend.ceiling_reached(day) is not None)
        listed = {f"watchlist_{k}": scrub(v) for step in steps for k, v in step.get("listing", {}).items()}
        context.add_output_metadata({**figures, **listed, **tables(store, day)})
        context.log.info(
            f"{day}: {s['batches_completed']}/{s['batches_expected']} batches, {s['sub_jobs']} sub-jobs, "
            f"{s['calls']} calls against {s['naive_calls']} naive (${figures['cost_usd']:.2f})"
        )
        return figures

    @graph_asset(
        key=scope.key("synced_resources"),
        partitions_def=scope.partitions,
        ins={"job_set": AssetIn(key=job_set.key, dagster_type=Nothing)},
        group_name=scope.group,
        kinds={"api", "sql"},
        metadata={"cost_by_strategy": MetadataValue.md(estimate)} if estimate else None,
    )
    def synced_resources(job_set):
        """The day's resources, synced: probed, compared by fingerprint, detail-fetched if changed,
        upserted one batch at a time, with one outcome row per sub-job and one ledger row per batch."""
        steps = plan_sync_steps(job_set)
        return summarize_sync(steps.map(sync_batches).collect())

    return synced_resources


def sync_step(context: OpExecutionContext, config: SyncStepConfig, step: dict, scope: SourceScope) -> dict:
    batch_nos, listing = step["batches"], step.get("listing")
    if not batch_nos and listing is None:
        return {"batches": 0, "calls": 0}
    source_api, store = scope.api(context), scope.store(context)
    if (stopped := halted(store, context.run.run_id)) is not None:
        raise stopped
    check_source(context.log, store, source_api, scope.name, loud=False)
    day = partition_day(context.partition_key)
    declared, settings = source_api.declaration(), load_settings()
    plan = SyncPlan(
        day=day,
        strategy=ProbeStrategy(declared.probe.strategy),
        probe_fields=declared.probe.fields,
        fingerprint_fields=declared.fingerprint,
        run_id=context.run.run_id,
        parallelism=_given(config.parallelism, settings.sync_batch_parallelism),
        retry_budget_days=_given(config.retry_budget_days, settings.retry_budget_days),
        lease_seconds=_given(config.lease_seconds, settings.sync_claim_lease_seconds),
        force=step["force"],
        guard=GuardPolicy(
            ratio=_given(config.systemic_failure_ratio, settings.sync_systemic_failure_ratio),
            window=_given(config.systemic_window, settings.sync_systemic_window),
        ),
        authoritative=bool(declared.listing and declared.listing.authoritative),
    )
    spend = scope.spend_log(context, day, "sync")
    listing_spend = scope.spend_log(context, day, "listing") if listing is not None else None
    lines = Coalesced(context.log.info)  # every batch's line, a few events in all
    beside = None

    def on_batch(summary: BatchSummary) -> None:
        lines.add(summary.line())

    budget, route = source_api.rate_budget(), scope.alerts(context)

    async def go():
        learned = await asyncio.to_thread(
            store.runs.learned_rate, budget
        )  # an undeclared rate: where the last run left it
        served = simulated_day(context.partition_key, declared.operations.start_date)
        async with source_api.open(served, spend, listing_spend, learned) as client:

            async def listed() -> list[int]:
                """The listing beside the sync; its new ids' batches go before any not yet started."""
                nonlocal beside
                assert listing is not None
                size = listing["batch_size"] or default_batch_size(declared)
                beside = await list_beside(client, store, day, size, listing["after"])
                await asyncio.to_thread(report_listing, context.log, beside, store, day, context.run.run_id, route)
                return beside.new_batches

            try:
                ahead = listed() if listing is not None else None
                done = await run_batches(client, store.ledger, plan, batch_nos, on_batch=on_batch, ahead=ahead)
            finally:
                lines.flush()
            if client.breaker.times_opened:
                context.log.warning(f"circuit breaker opened {client.breaker.times_opened} time(s) in this step")
            if client.throttle.deferred:
                context.log.error(f"the API throttled this step's client: {client.throttle.deferred}")
        await asyncio.to_thread(store.runs.remember_rate, budget, client.learned_rate)
        return client.meter, done, client.ceiling_reached

    meter, done, reached = run_loop(context, store, go(), day, "sync_batches", route)
    report_ceiling(context.log, store, day, context.run.run_id, route, reached)
    listed = beside.figures() if beside is not None else {}
    return {
        "batches": len(done),
        "calls": meter.total - meter.calls["listing"],
        "throttled": meter.throttled,
        "retries": meter.retries,
        "ceiling_reached": reached or "",
        **({"listing": listed} if listed else {}),
    }


def report_listing(log, beside: ListedBeside, store, day, run_id: str, route: AlertRoute) -> None:
    """The listing beside the sync in the step's log: its line, refused ids, its account (an
    incomplete one loudly, and alerted)."""
    (log.warning if beside.error else log.info)(beside.line())
    log_refused(log, beside.update)
    if beside.account is not None:
        close_listing(log, store, beside.account, day, run_id, route)


synced_resources = synced_resources_asset(DEFAULT_SCOPE, job_set)
