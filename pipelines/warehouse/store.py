"""The warehouse's operations. Every statement is SQLAlchemy Core with bound parameters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.core.batching import assign_batches, chunked
from pipelines.core.outcomes import BatchResult, Outcome, StoredState
from pipelines.source.client import CallMeter
from pipelines.warehouse.schema import (
    LEDGER_CALLS,
    LEDGER_COUNTS,
    batch_ledger,
    job_set,
    metadata,
    resources,
    sub_job_outcomes,
    watchlist,
)
from pipelines.warehouse.upsert import newer_or_same, resources_set, upsert

WRITE_CHUNK = 5_000


@dataclass(frozen=True)
class BatchRecord:
    """Everything a finished batch writes, in one transaction."""

    partition: date
    batch_no: int
    result: BatchResult
    meter: CallMeter
    started_at: datetime
    finished_at: datetime
    run_id: str


def create_warehouse_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # WAL: readers never block the writer
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Warehouse:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        metadata.create_all(engine)

    # -- watchlist ------------------------------------------------------------------------

    def upsert_watchlist(self, ids: Iterable[str], source: str, day: date) -> int:
        """Add ids (active) and mark listed ones seen on ``day``; answers how many ids came."""
        seen = 0
        with self.engine.begin() as conn:
            for chunk in chunked(ids, WRITE_CHUNK):
                rows = [
                    {"resource_id": rid, "active": True, "source": source, "added_on": day, "last_listed_on": day}
                    for rid in dict.fromkeys(chunk)
                ]
                conn.execute(
                    upsert(self.dialect, watchlist, rows, set_=lambda ex, t: {"last_listed_on": ex.last_listed_on})
                )
                seen += len(rows)
        return seen

    def watchlist_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(watchlist.c.active, sa.func.count()).group_by(watchlist.c.active))
            counts = {bool(active): n for active, n in rows}
        return {"active": counts.get(True, 0), "inactive": counts.get(False, 0)}

    # -- job set --------------------------------------------------------------------------

    def build_job_set(self, day: date, batch_size: int) -> int:
        """Append the active watchlist ids not yet in ``day``'s job set, in new batches.

        Existing sub-jobs keep their batch numbers, so re-running the day makes the same batches.
        Ids are streamed in sorted order; answers how many sub-jobs were added.
        """
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(job_set.c.batch_no)).where(job_set.c.partition == day)).scalar()
        first_batch = 0 if last is None else last + 1
        already = sa.exists().where(job_set.c.partition == day, job_set.c.resource_id == watchlist.c.resource_id)
        query = (
            sa.select(watchlist.c.resource_id)
            .where(watchlist.c.active.is_(True), ~already)
            .order_by(watchlist.c.resource_id)
        )
        added = 0
        with self.engine.connect() as reader:
            ids = reader.execution_options(yield_per=WRITE_CHUNK).execute(query).scalars()
            numbered = assign_batches(ids, batch_size, first_batch)
            for chunk in chunked(numbered, WRITE_CHUNK):
                with self.engine.begin() as writer:
                    writer.execute(
                        sa.insert(job_set),
                        [{"partition": day, "resource_id": r, "batch_no": b, "origin": "watchlist"} for r, b in chunk],
                    )
                added += len(chunk)
        return added

    def job_set_counts(self, day: date) -> dict[str, int]:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(job_set.c.batch_no))).where(
                    job_set.c.partition == day
                )
            ).one()
        return {"sub_jobs": row[0], "batches": row[1]}

    def pending_batches(self, day: date, force: bool = False) -> list[int]:
        """Batch numbers of ``day`` not completed in the ledger (all of them when ``force``)."""
        query = sa.select(job_set.c.batch_no).where(job_set.c.partition == day).distinct()
        if not force:
            done = sa.select(batch_ledger.c.batch_no).where(
                batch_ledger.c.partition == day, batch_ledger.c.status == "completed"
            )
            query = query.where(job_set.c.batch_no.not_in(done))
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def batch_members(self, day: date, batch_no: int) -> list[str]:
        query = (
            sa.select(job_set.c.resource_id)
            .where(job_set.c.partition == day, job_set.c.batch_no == batch_no)
            .order_by(job_set.c.resource_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # -- sync -----------------------------------------------------------------------------

    def stored_states(self, ids: Sequence[str]) -> dict[str, StoredState]:
        query = sa.select(resources.c.resource_id, resources.c.fingerprint, resources.c.etag).where(
            resources.c.resource_id.in_(ids), resources.c.status == "live"
        )
        with self.engine.connect() as conn:
            return {rid: StoredState(fp, etag) for rid, fp, etag in conn.execute(query)}

    def record_batch(self, rec: BatchRecord) -> None:
        """Resources, outcomes and the ledger row of one batch, in one transaction.

        Each is a single multi-row upsert, so the batch is all written or not at all, and writing
        it again (a re-run, a retry) changes nothing.
        """
        result, day, now = rec.result, rec.partition, rec.finished_at
        updates = [
            {
                "resource_id": u.resource_id,
                "status": u.status,
                "fingerprint": u.fingerprint,
                "etag": u.etag,
                "projected": u.projected,
                "details": u.details,
                "first_seen": now,
                "last_changed": now if u.changed else None,
                "last_checked": now,
                "last_partition": day,
            }
            for u in result.updates
        ]
        outcomes = [
            {
                "partition": day,
                "resource_id": r.resource_id,
                "batch_no": rec.batch_no,
                "outcome": r.outcome.value,
                "reason": r.reason[:500],
                "error_class": r.error_class,
                "http_status": r.http_status,
                "attempts": r.attempts,
                "run_id": rec.run_id,
                "recorded_at": now,
            }
            for r in result.results
        ]
        counts = result.counts()
        ledger_row: dict[str, Any] = {
            "partition": day,
            "batch_no": rec.batch_no,
            "status": "completed",
            "sub_jobs": len(result.results),
            **{name: counts.get(name, 0) for name in LEDGER_COUNTS if name != "sub_jobs"},
            "calls": rec.meter.total,
            "calls_saved": 2 * len(result.results) - rec.meter.total,
            "bytes_received": rec.meter.bytes_received,
            "throttled": rec.meter.throttled,
            "retries": rec.meter.retries,
            "started_at": rec.started_at,
            "finished_at": rec.finished_at,
            "duration_s": (rec.finished_at - rec.started_at).total_seconds(),
            "run_id": rec.run_id,
        }
        gone = [r.resource_id for r in result.results if r.outcome is Outcome.GONE]
        with self.engine.begin() as conn:
            if updates:
                conn.execute(upsert(self.dialect, resources, updates, set_=resources_set, where=newer_or_same))
            if outcomes:
                conn.execute(upsert(self.dialect, sub_job_outcomes, outcomes))
            conn.execute(upsert(self.dialect, batch_ledger, [ledger_row]))
            if gone:
                conn.execute(
                    sa.update(watchlist)
                    .where(watchlist.c.resource_id.in_(gone))
                    .values(active=False, deactivated_on=day, deactivated_reason="gone at the source")
                )

    # -- reading --------------------------------------------------------------------------

    def partition_summary(self, day: date) -> dict[str, Any]:
        """The day's figures, from the ledger (the truth about what completed)."""
        sums = [sa.func.coalesce(sa.func.sum(batch_ledger.c[n]), 0).label(n) for n in (*LEDGER_COUNTS, *LEDGER_CALLS)]
        query = sa.select(
            sa.func.count().label("batches_completed"),
            *sums,
            sa.func.min(batch_ledger.c.started_at).label("started_at"),
            sa.func.max(batch_ledger.c.finished_at).label("finished_at"),
            sa.func.coalesce(sa.func.sum(batch_ledger.c.duration_s), 0.0).label("batch_seconds"),
        ).where(batch_ledger.c.partition == day, batch_ledger.c.status == "completed")
        with self.engine.connect() as conn:
            row = dict(conn.execute(query).one()._mapping)
        for name in ("batches_completed", *LEDGER_COUNTS, *LEDGER_CALLS):
            row[name] = int(row[name])  # PostgreSQL sums are Decimal
        row["batch_seconds"] = float(row["batch_seconds"])
        jobs = self.job_set_counts(day)
        row["sub_jobs"] = jobs["sub_jobs"]
        row["batches_expected"] = jobs["batches"]
        row["sub_jobs_done"] = sum(row[n] for n in ("changed", "unchanged", "gone", "failed"))
        row["naive_calls"] = 2 * jobs["sub_jobs"]
        return row

    def outcome_history(self, resource_id: str, day: date | None = None) -> list[dict[str, Any]]:
        query = sa.select(sub_job_outcomes).where(sub_job_outcomes.c.resource_id == resource_id)
        if day is not None:
            query = query.where(sub_job_outcomes.c.partition == day)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(sub_job_outcomes.c.partition))]

    def count(self, table: sa.Table, **where: Any) -> int:
        query = sa.select(sa.func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def utcnow() -> datetime:
    return datetime.now(UTC)
