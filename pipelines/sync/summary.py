"""The day's figures as materialization metadata: numbers the UI plots over partitions, and two
tables (the latest batch summaries, the top error classes)."""

from datetime import date
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from pipelines.core.batching import batch_id
from pipelines.source.declaration import Cost
from pipelines.warehouse.store import Warehouse

BATCH_COLUMNS = [
    TableColumn("batch", "string"),
    TableColumn("sub_jobs", "int"),
    TableColumn("changed", "int"),
    TableColumn("unchanged", "int"),
    TableColumn("gone", "int"),
    TableColumn("retry", "int"),
    TableColumn("dead", "int"),
    TableColumn("calls", "int"),
    TableColumn("seconds", "float"),
]


def priced(s: dict[str, Any], cost: Cost) -> tuple[float, float]:
    """What the day's calls cost, and what the naive way (a probe and a detail call per sub-job)
    would have: each kind at its price, the listing's too. Calls of no known kind (a run that
    died before writing its batch) are priced as detail calls: a bill is never understated."""
    kinds = {k: s.get(f"{k}_calls", 0) for k in ("probe", "bulk_probe", "detail")}
    unknown = max(0, s["calls"] - sum(kinds.values()))
    paid = cost.of({**kinds, "listing": s.get("listing_calls", 0), "detail": kinds["detail"] + unknown})
    naive = cost.of({"probe": s["sub_jobs"], "detail": s["sub_jobs"]})
    return paid, naive


def numbers(s: dict[str, Any], calls_this_run: int, cost: Cost) -> dict[str, int | float]:
    """The plotted figures of one partition (all numbers, so Dagster plots each over partitions)."""
    window = (s["finished_at"] - s["started_at"]).total_seconds() if s["started_at"] else 0.0
    calls_saved = s["naive_calls"] - s["calls"]
    paid, naive = priced(s, cost)
    sync_paid = paid - cost.of({"listing": s.get("listing_calls", 0)})
    return {
        "sub_jobs": s["sub_jobs"],
        "batches_expected": s["batches_expected"],
        "batches_completed": s["batches_completed"],
        "changed": s["changed"],
        "new": s["new"],
        "unchanged": s["unchanged"],
        "gone": s["gone"],
        "retry": s["retry"],
        "dead": s["dead"],
        "calls_made": s["calls"],  # the batches' calls, abandoned claims (a run that died) included
        "abandoned_calls": s.get("abandoned_calls", 0),
        "listing_calls": s.get("listing_calls", 0),
        "calls_saved": calls_saved,
        "naive_calls": s["naive_calls"],
        "calls_this_run": calls_this_run,
        "cost_usd": round(paid, 4),
        "cost_saved_usd": round(naive - sync_paid, 4),
        "bytes_received": s["bytes_received"],
        "throttled": s["throttled"],
        "retries": s["retries"],
        "details_embedded": s.get("embedded_details", 0),  # detail calls the answers carrying them saved
        "duration_s": round(window, 3),
        "batch_seconds": round(float(s["batch_seconds"]), 3),
    }


def tables(store: Warehouse, day: date) -> dict[str, MetadataValue]:
    batches = [
        TableRecord(
            {
                "batch": batch_id(day.isoformat(), b["batch_no"]),
                **{k: int(b[k]) for k in ("sub_jobs", "changed", "unchanged", "gone", "retry", "dead", "calls")},
                "seconds": round(float(b["duration_s"]), 3),
            }
        )
        for b in store.reports.latest_batches(day)
    ]
    errors = [TableRecord({"error_class": cls, "sub_jobs": n}) for cls, n in store.reports.error_classes(day).items()]
    return {
        "latest_batches": MetadataValue.table(batches, TableSchema(BATCH_COLUMNS)),
        "top_error_classes": MetadataValue.table(
            errors, TableSchema([TableColumn("error_class", "string"), TableColumn("sub_jobs", "int")])
        ),
    }
