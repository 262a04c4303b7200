"""Asset checks of each day: a listing that accounts for every item, nothing lost, enough synced,
and not too much dead-lettered.

The checks of a source run as ONE step (a ``multi_asset_check``): each step costs Dagster
about a third of a second of events, and a day's run is short enough for that to show in its
overhead (``make bench``'s overhead by step).

Partitioned asset checks are a preview feature of Dagster 1.13 (a check result per partition is
exactly what a daily promise needs); their PreviewWarning is silenced here, where they are made.
"""

import warnings
from functools import partial

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetsDefinition,
    PreviewWarning,
    multi_asset_check,
)

from pipelines.settings import load_settings
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.partitions import partition_day
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.sync.synced_resources import synced_resources

warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning)


CONSERVATION = (
    "Nothing lost: every sub-job of the day's job set has exactly one outcome (changed, "
    "unchanged, gone, retry or dead), every retry has a queue entry and every dead one a "
    "dead-letter entry."
)
DEAD_LETTER_RATE = (
    "The share of the day's sub-jobs sent to the dead letter stays under DEAD_LETTER_MAX_RATE; "
    "above it the run fails (and alerts) instead of passing quietly."
)
LISTING_COMPLETE = (
    "The day's listing accounted for every item: the ids listed reach the total the API stated, "
    "no item was skipped by an order that shifted between pages, no full first page ended the "
    "listing, no runaway or outage stopped it. An incomplete listing deactivates nothing and the "
    "day's next run lists again."
)
SPEND_CEILING = (
    "The day stayed under its spending ceiling (spend: in the declaration; derived from the tracked "
    "ids when not set). When the ceiling holds calls back, the day's remaining sub-jobs go to the "
    "retry queue unsent and this blocking check fails the run, saying so."
)
SYNCED_SHARE = (
    "Enough was synced: at least operations.completion.min_ratio of the day's sub-jobs ended changed, unchanged "
    "or gone. An API down all day defers every sub-job to the retry queue while every batch still "
    "completes; this check (and the completion sensor) says so instead of passing green."
)


def source_checks(
    scope: SourceScope, synced_resources: AssetsDefinition, dead_letter: AssetsDefinition
) -> list[AssetChecksDefinition]:
    """The daily checks of one source's assets, in one step."""
    synced, dead, watched = synced_resources.key, dead_letter.key, scope.key("watchlist")

    @multi_asset_check(
        name=scope.node("daily_checks"),
        specs=[
            AssetCheckSpec(  # after the sync too: from day 2 on, the sync lists beside its batches
                "listing_complete",
                asset=watched,
                additional_deps=[synced],
                description=LISTING_COMPLETE,
                partitions_def=scope.partitions,
            ),
            AssetCheckSpec("conservation", asset=synced, description=CONSERVATION, partitions_def=scope.partitions),
            AssetCheckSpec("synced_share", asset=synced, description=SYNCED_SHARE, partitions_def=scope.partitions),
            AssetCheckSpec(
                "spend_ceiling",
                asset=synced,
                blocking=True,
                description=SPEND_CEILING,
                partitions_def=scope.partitions,
            ),
            AssetCheckSpec(
                "dead_letter_rate",
                asset=dead,
                blocking=True,
                description=DEAD_LETTER_RATE,
                partitions_def=scope.partitions,
            ),
        ],
        required_resource_keys={"warehouse"},
        can_subset=True,  # a run of synced_resources alone checks what it can
    )
    def daily_checks(context: AssetCheckExecutionContext):
        store = scope.store(context)
        day = partition_day(context.partition_key)
        selected = context.selected_asset_check_keys
        min_share = scope.operations.completion.min_ratio
        checks = (
            ("listing_complete", listing_complete, watched),
            ("conservation", conservation, synced),
            ("synced_share", partial(synced_share, min_share=min_share), synced),
            ("spend_ceiling", spend_ceiling, synced),
            ("dead_letter_rate", dead_letter_rate, dead),
        )
        for name, check, asset in checks:
            if AssetCheckKey(asset, name) in selected:
                yield check(store, day, asset)

    return [daily_checks]


def conservation(store, day, asset: AssetKey) -> AssetCheckResult:
    c = store.reports.conservation(day)
    problems = {
        k: c[k]
        for k in (
            "without_outcome",
            "outcomes_without_sub_job",
            "retry_without_queue_entry",
            "dead_without_dead_letter",
            "unknown_outcomes",
        )
        if c[k]
    }
    accounted = sum(c[o] for o in ("changed", "unchanged", "gone", "retry", "dead"))
    return AssetCheckResult(
        asset_key=asset,
        check_name="conservation",
        passed=not problems and accounted == c["sub_jobs"],
        metadata={**c, "accounted": accounted},
        description="every sub-job accounted for" if not problems else f"unaccounted: {problems}",
    )


def dead_letter_rate(store, day, asset: AssetKey) -> AssetCheckResult:
    dead = sum(store.queues.dead_letter_counts(day).values())
    sub_jobs = store.job_sets.job_set_counts(day)["sub_jobs"]
    rate = dead / sub_jobs if sub_jobs else 0.0
    limit = load_settings().dead_letter_max_rate
    return AssetCheckResult(
        asset_key=asset,
        check_name="dead_letter_rate",
        passed=rate <= limit,
        severity=AssetCheckSeverity.ERROR,
        metadata={"dead": dead, "sub_jobs": sub_jobs, "rate": rate, "max_rate": limit},
        description=f"{dead} of {sub_jobs} dead-lettered ({rate:.2%}; limit {limit:.2%})",
    )


def synced_share(store, day, asset: AssetKey, min_share: float) -> AssetCheckResult:
    p = store.reports.batch_progress(day)
    share = p["synced"] / p["sub_jobs"] if p["sub_jobs"] else 1.0
    limit = min_share
    return AssetCheckResult(
        asset_key=asset,
        check_name="synced_share",
        passed=share >= limit,
        severity=AssetCheckSeverity.WARN,
        metadata={"synced": p["synced"], "sub_jobs": p["sub_jobs"], "share": share, "min_share": limit},
        description=f"{p['synced']} of {p['sub_jobs']} sub-jobs synced ({share:.1%}; at least {limit:.1%} expected)",
    )


sync_checks = source_checks(DEFAULT_SCOPE, synced_resources, dead_letter)


def listing_complete(store, day, asset: AssetKey) -> AssetCheckResult:
    account = store.listings.listing_account(day)
    if account is None:
        return AssetCheckResult(
            asset_key=asset,
            check_name="listing_complete",
            passed=True,
            description="no listing today (the watchlist comes from a CSV, or it was not listed)",
        )
    stated = account["stated_total"]
    metadata = {
        k: account[k] for k in ("pages", "served", "distinct_ids", "duplicates", "refused") if account[k] is not None
    }
    if stated is not None:
        metadata["stated_total"] = stated
    counted = f"{account['distinct_ids']} ids in {account['pages']} pages"
    return AssetCheckResult(
        asset_key=asset,
        check_name="listing_complete",
        passed=bool(account["complete"]),
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=f"complete: {counted}" if account["complete"] else f"INCOMPLETE ({counted}): {account['problem']}",
    )


def spend_ceiling(store, day, asset: AssetKey) -> AssetCheckResult:
    spent = store.spend.spent_totals(day)
    reached = store.spend.ceiling_reached(day)
    metadata = {"calls": spent["calls"] + spent["listing_calls"], "cost": round(spent["spent_cost"], 4)}
    if reached is None:
        return AssetCheckResult(
            asset_key=asset,
            check_name="spend_ceiling",
            passed=True,
            metadata=metadata,
            description=f"{metadata['calls']} calls; the spending ceiling held none back",
        )
    deferred = store.reports.error_classes(day, limit=100).get("spend_ceiling", 0)
    ceiling = f"{reached['calls']:,} calls" + (f" and {reached['cost']:g} in money" if reached["cost"] else "")
    return AssetCheckResult(
        asset_key=asset,
        check_name="spend_ceiling",
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        metadata={**metadata, "ceiling_calls": reached["calls"], "deferred_sub_jobs": deferred},
        description=(
            f"the day's spending ceiling ({ceiling}) was reached by run {reached['run_id']}: no call went out after "
            f"it, {deferred} sub-jobs went to the retry queue unsent (first tomorrow). Raise spend.max_calls, "
            "spend.max_cost or spend.headroom in the declaration if the day really needs more"
        ),
    )
