"""``dead_letter``: tier 3, the day's sub-jobs that will not be retried on their own."""

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from pipelines.sync.partitions import partition_day
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.store import Warehouse

PREVIEW_ROWS = 25


def dead_letter_asset(scope: SourceScope, synced_resources: AssetsDefinition) -> AssetsDefinition:
    @asset(
        key=scope.key("dead_letter"),
        partitions_def=scope.partitions,
        group_name=scope.group,
        deps=[synced_resources],
        kinds={"sql"},
        required_resource_keys={"warehouse"},
    )
    def dead_letter(context: AssetExecutionContext) -> MaterializeResult:
        """Poison records, permanent errors and tier 2 exhaustion of the day, each kept with the full
        request (no secrets), the response status, headers and a body excerpt, the error class, every
        attempt and its trace ids. The entries are written by the batches themselves, in the same
        transaction as their outcomes; this asset reports them. Replay with ``replay_dead_letters``.
        """
        return report_dead_letters(context, scope.store(context))

    return dead_letter


def report_dead_letters(context: AssetExecutionContext, store: Warehouse) -> MaterializeResult:
    day = partition_day(context.partition_key)
    by_class = store.queues.dead_letter_counts(day)
    dead = sum(by_class.values())
    preview = store.queues.dead_letters(day=day, limit=PREVIEW_ROWS)  # never the whole day's entries in memory
    sub_jobs = store.job_sets.job_set_counts(day)["sub_jobs"]
    context.log.info(f"dead letter {day}: {dead} entries {by_class}")
    return MaterializeResult(
        metadata={
            "dead": dead,
            "dead_rate": MetadataValue.float(round(dead / sub_jobs, 6) if sub_jobs else 0.0),
            **{f"dead_{cls}": n for cls, n in sorted(by_class.items())},
            "entries": MetadataValue.md(_table(preview)),
        }
    )


dead_letter = dead_letter_asset(DEFAULT_SCOPE, synced_resources)


def _table(entries: list[dict]) -> str:
    if not entries:
        return "No dead letters for this day."
    lines = ["| id | error class | status | HTTP | attempts | reason |", "| --- | --- | --- | --- | --- | --- |"]
    for e in entries:
        reason = str(e["reason"]).replace("|", "/")[:120]
        lines.append(
            f"| {e['id']} | {e['error_class']} | {e['status']} | {e['response_status'] or ''} | {e['attempts']} | {reason} |"
        )
    return "\n".join(lines)
