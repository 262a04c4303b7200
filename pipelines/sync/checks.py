"""Asset checks of each day: nothing lost, and not too much dead-lettered.

Partitioned asset checks are a preview feature of Dagster 1.13 (a check result per partition is
exactly what a daily promise needs); their PreviewWarning is silenced here, where they are made.
"""

import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    PreviewWarning,
    asset_check,
)

from pipelines.settings import load_settings
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.partitions import daily_partitions, partition_day
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.sync.synced_resources import synced_resources

_settings = load_settings()
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning)


def source_checks(
    scope: SourceScope, synced_resources: AssetsDefinition, dead_letter: AssetsDefinition
) -> list[AssetChecksDefinition]:
    """The daily checks of one source's assets."""

    @asset_check(
        asset=synced_resources,
        partitions_def=daily_partitions,
        required_resource_keys={"warehouse"},
        description=(
            "Nothing lost: every sub-job of the day's job set has exactly one outcome (changed, "
            "unchanged, gone, retry or dead), every retry has a queue entry and every dead one a "
            "dead-letter entry."
        ),
    )
    def conservation(context: AssetCheckExecutionContext) -> AssetCheckResult:
        c = scope.store(context).conservation(partition_day(context.partition_key))
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
            passed=not problems and accounted == c["sub_jobs"],
            metadata={**c, "accounted": accounted},
            description="every sub-job accounted for" if not problems else f"unaccounted: {problems}",
        )

    @asset_check(
        asset=dead_letter,
        partitions_def=daily_partitions,
        blocking=True,
        required_resource_keys={"warehouse"},
        description=(
            "The share of the day's sub-jobs sent to the dead letter stays under DEAD_LETTER_MAX_RATE; "
            "above it the run fails (and alerts) instead of passing quietly."
        ),
    )
    def dead_letter_rate(context: AssetCheckExecutionContext) -> AssetCheckResult:
        store = scope.store(context)
        day = partition_day(context.partition_key)
        dead = sum(store.dead_letter_counts(day).values())
        sub_jobs = store.job_set_counts(day)["sub_jobs"]
        rate = dead / sub_jobs if sub_jobs else 0.0
        limit = _settings.dead_letter_max_rate
        return AssetCheckResult(
            passed=rate <= limit,
            severity=AssetCheckSeverity.ERROR,
            metadata={"dead": dead, "sub_jobs": sub_jobs, "rate": rate, "max_rate": limit},
            description=f"{dead} of {sub_jobs} dead-lettered ({rate:.2%}; limit {limit:.2%})",
        )

    @asset_check(
        asset=synced_resources,
        partitions_def=daily_partitions,
        required_resource_keys={"warehouse"},
        description=(
            "Enough was synced: at least COMPLETION_MIN_RATIO of the day's sub-jobs ended changed, unchanged "
            "or gone. An API down all day defers every sub-job to the retry queue while every batch still "
            "completes; this check (and the completion sensor) says so instead of passing green."
        ),
    )
    def synced_share(context: AssetCheckExecutionContext) -> AssetCheckResult:
        p = scope.store(context).batch_progress(partition_day(context.partition_key))
        share = p["synced"] / p["sub_jobs"] if p["sub_jobs"] else 1.0
        limit = _settings.completion_min_ratio
        return AssetCheckResult(
            passed=share >= limit,
            severity=AssetCheckSeverity.WARN,
            metadata={"synced": p["synced"], "sub_jobs": p["sub_jobs"], "share": share, "min_share": limit},
            description=(
                f"{p['synced']} of {p['sub_jobs']} sub-jobs synced ({share:.1%}; at least {limit:.1%} expected)"
            ),
        )

    return [conservation, dead_letter_rate, synced_share]


sync_checks = source_checks(DEFAULT_SCOPE, synced_resources, dead_letter)
