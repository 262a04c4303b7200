"""The batch upsert into PostgreSQL (target 6): the pipeline's own write of a batch's resources
(``upsert_resources``), 100-row batches each in its own transaction, against the same rows
written one statement and transaction each (the naive write) and as one multi-row VALUES
statement (the write before ``bulk_upsert``), in one run."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipelines.bench.postgres import postgres_database
from pipelines.core.fingerprint import fingerprint
from pipelines.core.outcomes import ResourceUpdate
from pipelines.sample_api import SampleApiConfig, World
from pipelines.warehouse.batches import resource_rows, upsert_resources
from pipelines.warehouse.migrate import prepare
from pipelines.warehouse.schema import resources
from pipelines.warehouse.store import create_warehouse_engine
from pipelines.warehouse.upsert import newer_or_same, resources_set

DAY = date(2026, 1, 2)


def _updates(world: World, start: int, count: int, details_share: float) -> list[ResourceUpdate]:
    updates = []
    for index in range(start, start + count):
        record = world.record(f"r{index:07d}")
        changed = index % 100 < details_share * 100
        projected = {k: record[k] for k in ("id", "version", "updated_at")}
        etag = f'"{record["version"]}"'
        details = record if changed else None
        fp = fingerprint(record, ["version"])
        updates.append(ResourceUpdate(record["id"], "live", fp, etag, projected, details, changed=changed))
    return updates


def _values(conn: sa.Connection, updates: list[ResourceUpdate], now: datetime) -> None:
    """One multi-row VALUES statement: one bound parameter per value."""
    rows, stamps = resource_rows(updates, DAY, now)
    stmt = postgresql.insert(resources).values([{**row, **stamps} for row in rows])
    excluded = stmt.excluded
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["resource_id"],
            set_=resources_set(excluded, resources),
            where=newer_or_same(excluded, resources),
        )
    )


def _bulk(conn: sa.Connection, updates: list[ResourceUpdate], now: datetime) -> None:
    upsert_resources(conn, updates, DAY, now)


def _timed(engine: sa.Engine, batches: list[list[ResourceUpdate]], write) -> float:
    """Rows per second of ``write`` over the batches, into an empty table, a transaction a batch."""
    with engine.begin() as conn:
        conn.execute(sa.delete(resources))
    started = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            write(conn, batch, datetime.now(UTC))
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def upsert_rates(batches: int = 300, batch_size: int = 100, row_by_row: int = 3000, log=print) -> list[dict]:
    world = World(SampleApiConfig())
    results = []
    for label, share in (("day-2 mix (20% with details)", 0.2), ("all with details (day 1)", 1.0)):
        log(f"  warehouse upserts, {label} ...")
        data = [_updates(world, b * batch_size, batch_size, share) for b in range(batches)]
        singles = [[u] for u in _updates(world, 0, row_by_row, share)]
        with postgres_database("bench_up") as url:
            engine = create_warehouse_engine(url)
            prepare(engine)
            rates = {
                "bulk_rows_per_s": _timed(engine, data, _bulk),
                "values_rows_per_s": _timed(engine, data, _values),
                "row_by_row_rows_per_s": _timed(engine, singles, _values),
            }
            engine.dispose()
        rates["bulk_vs_row_by_row"] = rates["bulk_rows_per_s"] / rates["row_by_row_rows_per_s"]
        results.append({"rows": label, "batch_size": batch_size, **rates})
    return results
