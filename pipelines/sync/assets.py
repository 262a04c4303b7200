"""The daily assets ahead of the sync: the watchlist, the retry queue and the day's job set."""

import asyncio

from dagster import AssetExecutionContext, AssetsDefinition, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from pipelines.core.batching import batch_size_for
from pipelines.core.errors import SourceError
from pipelines.core.redact import scrub
from pipelines.settings import load_settings
from pipelines.source.client import CallMeter, SourceApiClient
from pipelines.source.declaration import SourceDeclaration
from pipelines.source.listing_account import ListingAccount
from pipelines.source.watchlist_csv import WatchlistCsvError, csv_ids
from pipelines.sync.ceiling import report_ceiling
from pipelines.sync.listing_accounts import close_listing
from pipelines.sync.listing_probe import DayListing
from pipelines.sync.paged_writes import write_while_listing
from pipelines.sync.partitions import partition_day, simulated_day
from pipelines.sync.past_days import refuse_past_day
from pipelines.sync.resources import DeclaredSource
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.sync.stops import run_loop
from pipelines.warehouse.store import SourceMismatchError, Warehouse, WatchlistUpdate


class WatchlistConfig(Config):
    csv_path: str | None = Field(
        default=None,
        description="CSV with a resource_id column; unset: the source's own (its declaration's watchlist_csv), else "
        "the API listing",
    )
    beside_sync: bool | None = Field(
        default=None,
        description="from day 2 on, list beside this run's sync (new ids synced at its end) when the listing is not "
        "the probe; unset: SYNC_LISTING_BESIDE",
    )
    force: bool = Field(
        default=False, description="list even when the day's batches all completed (a re-run is otherwise free)"
    )


class JobSetConfig(Config):
    batch_size: int | None = Field(
        default=None,
        ge=1,
        description="sub-jobs per batch; unset: the declaration's operations.batch_size, made whole bulk probes when "
        "the source probes in bulk",
    )


def upstream_assets(scope: SourceScope) -> tuple[AssetsDefinition, AssetsDefinition, AssetsDefinition]:
    """The watchlist, the retry queue and the job set of one source."""

    @asset(
        key=scope.key("watchlist"),
        partitions_def=scope.partitions,
        group_name=scope.group,
        kinds={"api", "sql"},
        required_resource_keys=scope.resource_keys,
    )
    def watchlist(context: AssetExecutionContext, config: WatchlistConfig) -> MaterializeResult:
        """The tracked resources: every id of the API listing (or of a CSV), kept in ``watchlist``.

        Ids are added, never dropped here; a resource the sync finds gone is deactivated there.
        From day 2 on, in a run that also syncs, a listing that only finds ids is handed to the
        sync, which pages it beside the tracked ids' batches and syncs the new ones at its end.
        """
        return refresh_watchlist(context, config, scope.api(context), scope.store(context), scope)

    @asset(
        key=scope.key("retry_queue"),
        partitions_def=scope.partitions,
        group_name=scope.group,
        kinds={"sql"},
        required_resource_keys=scope.resource_keys,
    )
    def retry_queue(context: AssetExecutionContext) -> MaterializeResult:
        """Tier 2: the sub-jobs due on this day that earlier days could not finish, and dead-letter
        replays. Its entries are written by ``synced_resources`` of the day before (sub-jobs whose
        in-code retries ran out, or that the circuit breaker held) and by ``replay_dead_letters``;
        the asset graph cannot draw that arrow, as it would close a cycle (see the README).
        Materialising it hands every entry due by the day to the day's job set.
        """
        day = partition_day(context.partition_key)
        store = scope.store(context)
        refuse_past_day(context, store, scope.api(context).declaration())
        counts = store.queues.schedule_retries(day)
        context.log.info(f"retry queue {day}: {counts['retry']} retries and {counts['replay']} replays scheduled")
        return MaterializeResult(metadata={**counts, "scheduled": counts["retry"] + counts["replay"]})

    @asset(
        key=scope.key("job_set"),
        partitions_def=scope.partitions,
        group_name=scope.group,
        deps=[watchlist, retry_queue],
        kinds={"sql"},
        required_resource_keys=scope.resource_keys,
    )
    def job_set(context: AssetExecutionContext, config: JobSetConfig) -> MaterializeResult:
        """The day's sub-jobs: the retry queue's entries for the day, then every active watchlist
        resource, numbered into batches.

        Re-running the day keeps every sub-job in its batch and appends new ones in new batches.
        """
        store = scope.store(context)
        day = partition_day(context.partition_key)
        declared = scope.api(context).declaration()
        refuse_past_day(context, store, declared)
        batch_size = config.batch_size or default_batch_size(declared)
        added = store.job_sets.build_job_set(day, batch_size)
        store.handoffs.note_batch_size(day, batch_size)  # the listing beside the sync numbers new ids alike
        counts = store.job_sets.job_set_counts(day)
        context.log.info(f"job set {day}: {counts['sub_jobs']} sub-jobs in {counts['batches']} batches (added {added})")
        return MaterializeResult(
            metadata={
                "sub_jobs": counts["sub_jobs"],
                "batches": counts["batches"],
                "added": sum(added.values()),
                **{f"added_from_{origin}": n for origin, n in added.items()},
                "batch_size": batch_size,
            }
        )

    return watchlist, retry_queue, job_set


def refresh_watchlist(
    context: AssetExecutionContext,
    config: WatchlistConfig,
    source_api: DeclaredSource,
    store: Warehouse,
    scope: SourceScope,
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    check_source(context.log, store, source_api, scope.name)
    refuse_past_day(context, store, source_api.declaration())
    csv_path = config.csv_path or source_api.watchlist_csv()
    if not config.force and store.job_sets.last_batch_no(day) is not None and not store.job_sets.pending_batches(day):
        context.log.info(f"watchlist: every batch of {day} completed: not listed again (config force lists anyway)")
        return MaterializeResult(
            metadata={"listing": "not again: the day is complete", **store.watchlist.watchlist_counts()}
        )
    meter = CallMeter()
    refresh_error = None
    complete = True  # a CSV, or a listing that accounts for every item
    update = WatchlistUpdate()
    declared = source_api.declaration()
    probing = declared.probe.strategy in ("listing", "changed_since")  # the listing is the day's probe
    listed: DayListing | None = None
    beside_sync = load_settings().sync_listing_beside if config.beside_sync is None else config.beside_sync
    if not probing and not csv_path and beside_sync and _syncs_after(context, scope):
        tracked = store.watchlist.watchlist_counts()
        if tracked["active"]:  # day 1 lists here: the job set waits for the ids it has none of
            store.handoffs.hand_over_listing(day, context.run.run_id)
            context.log.info(
                f"watchlist: {tracked['active']} ids tracked; the listing runs beside this run's sync, "
                "which syncs the ids it finds new at its end"
            )
            return MaterializeResult(metadata={"listing": "beside the sync", **tracked})
    if csv_path:
        try:
            for ids in csv_ids(csv_path):
                update.add(store.watchlist.upsert_watchlist(ids, "csv", day))
        except WatchlistCsvError as exc:
            raise Failure(str(exc), allow_retries=False) from None
    if probing or not csv_path:
        spend = scope.spend_log(context, day, "listing")  # the listing's calls are paid for too
        day_index = (day - declared.operations.start_date).days
        listed = DayListing(store, declared, day, day_index) if probing else None
        account: ListingAccount | None = None
        lister: SourceApiClient | None = None

        def watch(ids: list[str]) -> WatchlistUpdate:
            return store.watchlist.upsert_watchlist(ids, "listing", day)

        budget = source_api.rate_budget()

        async def from_listing() -> None:
            nonlocal account, lister
            learned = await asyncio.to_thread(store.runs.learned_rate, budget)
            day_served = simulated_day(context.partition_key, declared.operations.start_date)
            async with source_api.open(day_served, spend=spend, learned_rate=learned) as client:
                account, lister = client.listing_account(), client
                if listed is None:
                    await write_while_listing(client.iter_ids(meter=meter, account=account), watch, update)
                else:
                    probe = listed

                    def record(items: list[tuple[str, dict]]) -> WatchlistUpdate:
                        ids = probe.record(items, account.present if account else None)  # fingerprints, then ids
                        return WatchlistUpdate() if csv_path else watch(ids)

                    pages = client.iter_listing(probe.plan.since, meter=meter, account=account)
                    await write_while_listing(pages, record, update)
                    probe.finish(account)
            await asyncio.to_thread(store.runs.remember_rate, budget, client.learned_rate)

        try:  # a refused credential, a stop the run was told: the run stops here
            run_loop(context, store, from_listing(), day, "watchlist", scope.alerts(context))
        except SourceError as exc:
            if not store.watchlist.watchlist_counts()["active"]:
                raise
            refresh_error = str(exc)  # an API outage must not stop the day: keep what is tracked
            context.log.warning(f"watchlist not refreshed, syncing the ids already tracked: {exc}")
        if lister is not None:
            report_ceiling(context.log, store, day, context.run.run_id, scope.alerts(context), lister.ceiling_reached)
        if account is not None:
            close_listing(context.log, store, account, day, context.run.run_id, scope.alerts(context))
            complete = account.complete
            if not probing and complete:
                store.handoffs.finish_handed_listing(day)  # an earlier run's handoff is done with: listed here
    log_refused(context.log, update)
    counts = store.watchlist.watchlist_counts()
    context.log.info(
        f"watchlist: {update.listed} ids listed ({update.reactivated} reactivated, {update.refused} refused), "
        f"{counts['active']} active"
    )
    if listed is not None:
        context.log.info(listed.line())
        for warning in listed.warnings:
            context.log.warning(warning)
    refused = scrub("\n".join(f"- {shown}: {problem}" for shown, problem in update.refused_sample))
    return MaterializeResult(
        metadata={
            "listed": update.listed,
            "reactivated": update.reactivated,
            "refused": update.refused,
            "refused_ids": MetadataValue.md(refused or "none"),
            "active": counts["active"],
            "inactive": counts["inactive"],
            "calls": meter.total,
            "refresh_error": scrub(refresh_error or ""),  # an API's words: never a secret we know
            "listing_complete": complete,
            **(listed.figures() if listed is not None else {}),
        }
    )


def log_refused(log, update: WatchlistUpdate) -> None:
    """The ids a refresh refused, by name as far as the sample goes, as warnings."""
    for shown, problem in update.refused_sample:
        log.warning(f"watchlist: refused id {shown}: it {problem}")
    if update.refused > len(update.refused_sample):
        log.warning(f"watchlist: {update.refused - len(update.refused_sample)} more ids refused")


def default_batch_size(declared: SourceDeclaration) -> int:
    """The declaration's ``operations.batch_size``, made whole bulk probes for a source that probes in bulk."""
    bulk = declared.bulk_probe.max_ids if declared.probe.strategy == "bulk" and declared.bulk_probe else None
    return batch_size_for(declared.operations.batch_size, bulk)


def _syncs_after(context: AssetExecutionContext, scope: SourceScope) -> bool:
    """Whether this run syncs the day after the watchlist (its job executes ``synced_resources``)."""
    return scope.key("synced_resources") in context.job_def.asset_layer.executable_asset_keys


def check_source(log, store: Warehouse, source_api: DeclaredSource, owner: str | None, loud: bool = True) -> None:
    """Say (loudly: a warning, once a run, by the watchlist) when the embedded sample API is the
    source, and refuse to mix sources (``owner``: the source's name; None: the one configured by
    environment)."""
    try:
        identity = source_api.identity()
        store.runs.claim_source(identity, owner)
    except (SourceMismatchError, ValueError) as exc:
        raise Failure(str(exc), allow_retries=False) from None
    if identity == "sample":
        why, fix = f"{source_api.declaration_file} declares client.sample", "declare client.base_url there"
        (log.warning if loud else log.info)(
            f"{why}: syncing the EMBEDDED SAMPLE API (generated demo data), not a real API. To sync yours, {fix}."
        )


watchlist, retry_queue, job_set = upstream_assets(DEFAULT_SCOPE)
