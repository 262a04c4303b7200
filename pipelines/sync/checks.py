"""Asset checks of each day: nothing lost, and not too much dead-lettered.

The three checks of a source run as ONE step (a ``multi_asset_check``): each step costs Dagster
about a third of a second of events, and a day's run is short enough for that to show in its
overhead (``make bench``'s overhead by step).

Partitioned asset checks are a preview feature of Dagster 1.13 (a check result per partition is
exactly what a daily promise needs); their PreviewWarning is silenced here, where they are made.
"""

import warnings

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
from pipelines.sync.partitions import daily_partitions, partition_day
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.sync.synced_resources import synced_resources

_settings = load_settings()
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
SYNCED_SHARE = (
    "Enough was synced: at least COMPLETION_MIN_RATIO of the day's sub-jobs ended changed, unchanged "
    "or gone. An API down all day defers every sub-job to the retry queue while every batch still "
    "completes; this check (and the completion sensor) says so instead of passing green."
)


def source_checks(
    scope: SourceScope, synced_resources: AssetsDefinition, dead_letter: AssetsDefinition
) -> list[AssetChecksDefinition]:
    """The daily checks of one source's assets, in one step."""
    synced, dead = synced_resources.key, dead_letter.key

    @multi_asset_check(
        name=scope.node("daily_checks"),
        specs=[
            AssetCheckSpec("conservation", asset=synced, description=CONSERVATION, partitions_def=daily_partitions),
            AssetCheckSpec("synced_share", asset=synced, description=SYNCED_SHARE, partitions_def=daily_partitions),
            AssetCheckSpec(
                "dead_letter_rate",
                asset=dead,
                blocking=True,
                description=DEAD_LETTER_RATE,
                partitions_def=daily_partitions,
            ),
        ],
        required_resource_keys={"warehouse"},
        can_subset=True,  # a run of synced_resources alone checks what it can
    )
    def daily_checks(context: AssetCheckExecutionContext):
        store = scope.store(context)
        day = partition_day(context.partition_key)
        selected = context.selected_asset_check_keys
        for check, asset in ((conservation, synced), (synced_share, synced), (dead_letter_rate, dead)):
            if AssetCheckKey(asset, check.__name__) in selected:
                yield check(store, day, asset)

    return [daily_checks]


def conservation(store, day, asset: AssetKey) -> AssetCheckResult:
    c = store.conservation(day)
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
    dead = sum(store.dead_letter_counts(day).values())
    sub_jobs = store.job_set_counts(day)["sub_jobs"]
    rate = dead / sub_jobs if sub_jobs else 0.0
    limit = _settings.dead_letter_max_rate
    return AssetCheckResult(
        asset_key=asset,
        check_name="dead_letter_rate",
        passed=rate <= limit,
        severity=AssetCheckSeverity.ERROR,
        metadata={"dead": dead, "sub_jobs": sub_jobs, "rate": rate, "max_rate": limit},
        description=f"{dead} of {sub_jobs} dead-lettered ({rate:.2%}; limit {limit:.2%})",
    )


def synced_share(store, day, asset: AssetKey) -> AssetCheckResult:
    p = store.batch_progress(day)
    share = p["synced"] / p["sub_jobs"] if p["sub_jobs"] else 1.0
    limit = _settings.completion_min_ratio
    return AssetCheckResult(
        asset_key=asset,
        check_name="synced_share",
        passed=share >= limit,
        severity=AssetCheckSeverity.WARN,
        metadata={"synced": p["synced"], "sub_jobs": p["sub_jobs"], "share": share, "min_share": limit},
        description=f"{p['synced']} of {p['sub_jobs']} sub-jobs synced ({share:.1%}; at least {limit:.1%} expected)",
    )


sync_checks = source_checks(DEFAULT_SCOPE, synced_resources, dead_letter)
