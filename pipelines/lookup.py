"""What happened to a resource: ``python -m pipelines.lookup r0000042 [--day 2026-01-02]``.

One call answers across the tiers: the outcome of every day it was a sub-job (or of one day),
its retry-queue entries and its dead-letter entries, with their attempt history.
"""

import argparse
import json
from datetime import date

from pipelines.settings import load_settings
from pipelines.warehouse.store import Warehouse, create_warehouse_engine


def lookup(store: Warehouse, resource_id: str, day: date | None = None) -> dict:
    dead = (
        [e for e in store.dead_letters() if e["resource_id"] == resource_id]
        if day is None
        else [e for e in store.dead_letters(day=day) if e["resource_id"] == resource_id]
    )
    retries = store.retry_entries(resource_id)
    if day is not None:
        retries = [r for r in retries if r["due_on"] > day >= r["created_at"].date() or r["scheduled_for"] == day]
    return {
        "resource_id": resource_id,
        "outcomes": store.outcome_history(resource_id, day),
        "retry_queue": retries,
        "dead_letter": dead,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.lookup", description=__doc__)
    parser.add_argument("resource_id")
    parser.add_argument("--day", type=date.fromisoformat, help="one partition (YYYY-MM-DD); default: all")
    parser.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default: WAREHOUSE_URL)")
    args = parser.parse_args(argv)
    store = Warehouse(create_warehouse_engine(args.warehouse or load_settings().warehouse_url))
    print(json.dumps(lookup(store, args.resource_id, args.day), indent=2, default=str))


if __name__ == "__main__":
    main()
