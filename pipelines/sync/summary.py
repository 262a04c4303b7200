"""The day's figures as materialization metadata: numbers the UI plots over partitions, and two
tables (the latest batch summaries, the top error classes)."""

from datetime import date
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from pipelines.core.batching import batch_id
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


def numbers(s: dict[str, Any], calls_this_run: int, price_per_1000: float) -> dict[str, int | float]:
    """The plotted figures of one partition (all numbers, so Dagster plots each over partitions)."""
    window = (s["finished_at"] - s["started_at"]).total_seconds() if s["started_at"] else 0.0
    calls_saved = s["naive_calls"] - s["calls"]
    paid = s["calls"] + s.get("listing_calls", 0)  # every call is billed, the listing's too
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
        "cost_usd": round(paid * price_per_1000 / 1000, 4),
        "cost_saved_usd": round(calls_saved * price_per_1000 / 1000, 4),
        "bytes_received": s["bytes_received"],
        "throttled": s["throttled"],
        "retries": s["retries"],
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
        for b in store.latest_batches(day)
    ]
    errors = [TableRecord({"error_class": cls, "sub_jobs": n}) for cls, n in store.error_classes(day).items()]
    return {
        "latest_batches": MetadataValue.table(batches, TableSchema(BATCH_COLUMNS)),
        "top_error_classes": MetadataValue.table(
            errors, TableSchema([TableColumn("error_class", "string"), TableColumn("sub_jobs", "int")])
        ),
    }
