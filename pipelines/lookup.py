"""What happened to a resource: ``python -m pipelines.lookup r0000042 [--day 2026-01-02] [--source shop]``.

One call answers across the tiers: the outcome of every day it was a sub-job (or of one day),
its retry-queue entries and its dead-letter entries, with their attempt history. It only reads:
a warehouse URL that does not lead to an existing pipelines warehouse is an error, never a new
empty warehouse.
"""

import argparse
import json
import sys
from datetime import date

from pipelines.core.ids import id_problem
from pipelines.settings import SettingsError, load_settings
from pipelines.warehouse.migrate import WarehouseVersionError
from pipelines.warehouse.store import Warehouse, WarehouseNotFoundError, open_existing


def lookup(store: Warehouse, resource_id: str, day: date | None = None) -> dict:
    retries = store.queues.retry_entries(resource_id)
    if day is not None:
        retries = [r for r in retries if r["due_on"] > day >= r["created_at"].date() or r["scheduled_for"] == day]
    return {
        "resource_id": resource_id,
        "outcomes": store.reports.outcome_history(resource_id, day),
        "retry_queue": retries,
        "dead_letter": store.queues.dead_letters(day=day, resource_id=resource_id),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.lookup", description=__doc__)
    parser.add_argument("resource_id")
    parser.add_argument("--day", type=date.fromisoformat, help="one partition (YYYY-MM-DD); default: all")
    parser.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default: WAREHOUSE_URL)")
    parser.add_argument(
        "--source",
        default=None,
        help="the source's name, in a code location of sources declared under pipelines/defs/ (its warehouse "
        "namespace); unset: the one source the environment configures",
    )
    args = parser.parse_args(argv)
    problem = id_problem(args.resource_id)
    if problem:
        parser.error(f"argument resource_id: the id {problem}")
    try:
        store = open_existing(args.warehouse or load_settings().warehouse_url, args.source)
    except (WarehouseNotFoundError, WarehouseVersionError, SettingsError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: argument --warehouse: {exc}\n")
    json.dump(lookup(store, args.resource_id, args.day), sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
