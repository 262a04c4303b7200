"""``dead_letter``: tier 3, the day's sub-jobs that will not be retried on their own."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from pipelines.sync.partitions import daily_partitions, partition_day
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.synced_resources import synced_resources

PREVIEW_ROWS = 25


@asset(partitions_def=daily_partitions, group_name="sync", deps=[synced_resources], kinds={"sql"})
def dead_letter(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Poison records, permanent errors and tier 2 exhaustion of the day, each kept with the full
    request (no secrets), the response status, headers and a body excerpt, the error class, every
    attempt and its trace ids. The entries are written by the batches themselves, in the same
    transaction as their outcomes; this asset reports them. Replay with ``replay_dead_letters``.
    """
    store = warehouse.store()
    day = partition_day(context.partition_key)
    by_class = store.dead_letter_counts(day)
    dead = sum(by_class.values())
    preview = store.dead_letters(day=day, limit=PREVIEW_ROWS)  # never the whole day's entries in memory
    sub_jobs = store.job_set_counts(day)["sub_jobs"]
    context.log.info(f"dead letter {day}: {dead} entries {by_class}")
    return MaterializeResult(
        metadata={
            "dead": dead,
            "dead_rate": MetadataValue.float(round(dead / sub_jobs, 6) if sub_jobs else 0.0),
            **{f"dead_{cls}": n for cls, n in sorted(by_class.items())},
            "entries": MetadataValue.md(_table(preview)),
        }
    )


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
