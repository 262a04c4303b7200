"""The warehouse's operations. Every statement is SQLAlchemy Core with bound parameters."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.core.batching import chunked
from pipelines.core.outcomes import Member, StoredState
from pipelines.core.ports import BatchRecord, LostClaimError, utcnow
from pipelines.core.statuses import LedgerStatus, Origin, QueueStatus
from pipelines.warehouse.batches import BatchOps, batch_statements
from pipelines.warehouse.connect import WarehouseNotFoundError, create_warehouse_engine, existing_engine
from pipelines.warehouse.halts import HaltOps, SourceMismatchError
from pipelines.warehouse.handoffs import HandoffOps
from pipelines.warehouse.listings import ListingOps
from pipelines.warehouse.migrate import check, prepare
from pipelines.warehouse.patience import patient_class
from pipelines.warehouse.queues import DeadLetterFilter, QueueOps
from pipelines.warehouse.schema import (
    LEDGER_CALLS,
    LEDGER_COUNTS,
    LEDGER_EMBEDDED,
    LEDGER_KIND_CALLS,
    batch_ledger,
    dead_letter,
    job_set,
    resources,
    retry_queue,
    sub_job_outcomes,
    watchlist,
)
from pipelines.warehouse.spent import SpentOps
from pipelines.warehouse.step_outputs import StepOutputOps
from pipelines.warehouse.watchlist import WatchlistOps, WatchlistUpdate

__all__ = [
    "BatchRecord",
    "DeadLetterFilter",
    "LostClaimError",
    "SourceMismatchError",
    "Warehouse",
    "WarehouseNotFoundError",
    "WatchlistUpdate",
    "create_warehouse_engine",
    "open_existing",
    "utcnow",
]

OUTCOMES = ("changed", "unchanged", "gone", "retry", "dead")


def open_existing(url: str, namespace: str | None = None) -> Warehouse:
    """The warehouse at ``url`` (a source's namespace of it) for a read-only tool: never
    created, never altered, never migrated (at another revision: an error naming the command)."""
    return Warehouse(existing_engine(url, namespace), read_only=True)


def _members(*where: sa.ColumnElement[bool]) -> sa.Select:
    """Sub-jobs of a day's job set, with their retry-queue context, in id order."""
    return (
        sa.select(
            job_set.c.resource_id,
            job_set.c.origin,
            retry_queue.c.tier2_days_used,
            retry_queue.c.history,
            retry_queue.c.dead_letter_id,
        )
        .select_from(
            job_set.outerjoin(
                retry_queue,
                sa.and_(
                    retry_queue.c.resource_id == job_set.c.resource_id,
                    retry_queue.c.scheduled_for == job_set.c.partition,
                    retry_queue.c.status != QueueStatus.SUPERSEDED,
                ),
            )
        )
        .where(job_set.c.partition == sa.bindparam("day"), *where)
        .order_by(job_set.c.resource_id)
    )


# A batch's sub-jobs (every batch reads it), and many batches' at once: built once.
_BATCH_MEMBERS = _members(job_set.c.batch_no == sa.bindparam("batch_no"))
_MEMBERS_OF = _members(job_set.c.batch_no.in_(sa.bindparam("batch_nos", expanding=True)))


class Warehouse(BatchOps, QueueOps, StepOutputOps, WatchlistOps, SpentOps, HaltOps, ListingOps, HandoffOps):
    def __init__(self, engine: sa.Engine, read_only: bool = False) -> None:
        """An empty namespace is created at the newest revision; one at another revision stops
        here, naming the migration command (``migrate.py``); ``read_only`` never writes."""
        self.engine = engine
        self.dialect = engine.dialect.name
        (check if read_only else prepare)(engine)

    # -- job set --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _job_set_lock(self, day: date) -> Iterator[None]:
        """One job set build of a source's day at a time (two runs of one partition at once): on
        PostgreSQL a session advisory lock, taken and released in transactions of their own, so
        the lock's connection is never left idle inside one. It is keyed by the source's schema
        (the connection's ``current_schema()``) and the day: two sources' builds never wait on
        each other."""
        if self.dialect != "postgresql":
            yield
            return
        key = sa.func.hashtextextended(sa.func.concat(f"job_set:{day.isoformat()}:", sa.func.current_schema()), 0)
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()

    def build_job_set(self, day: date, batch_size: int) -> dict[str, int]:
        """Append the day's sub-jobs not yet in its job set, in new batches: first the retry
        queue's entries scheduled for the day (retries and replays), then the active watchlist.

        Existing sub-jobs keep their batch numbers, so re-running the day makes the same batches.
        Ids are streamed in sorted order; answers how many sub-jobs of each origin were added.
        Two builds of one day at once take turns, and an id already there is never inserted again.
        """
        with self._job_set_lock(day):
            return self._build_job_set(day, batch_size)

    def _build_job_set(self, day: date, batch_size: int) -> dict[str, int]:
        """One ``INSERT ... SELECT`` numbered by a window: consecutive runs of ``batch_size`` in
        order, from the day's next batch number on. No id leaves the database: streaming them
        out and back in was most of the job set's step."""
        last = self.last_batch_no(day)
        first_batch = 0 if last is None else last + 1

        def absent(column):
            return ~sa.exists().where(job_set.c.partition == day, job_set.c.resource_id == column)

        queued = sa.select(
            retry_queue.c.resource_id.label("resource_id"),
            retry_queue.c.origin.label("origin"),
            sa.literal(0).label("rank"),
        ).where(
            retry_queue.c.scheduled_for == day,
            retry_queue.c.status == QueueStatus.SCHEDULED,
            absent(retry_queue.c.resource_id),
        )
        in_queue = sa.exists().where(
            retry_queue.c.scheduled_for == day,
            retry_queue.c.status == QueueStatus.SCHEDULED,
            retry_queue.c.resource_id == watchlist.c.resource_id,
        )
        synced_before = sa.exists().where(resources.c.resource_id == watchlist.c.resource_id)
        listed = sa.select(
            watchlist.c.resource_id,
            sa.literal(Origin.WATCHLIST.value).label("origin"),
            sa.case((synced_before, 2), else_=1).label("rank"),
        ).where(watchlist.c.active.is_(True), absent(watchlist.c.resource_id), ~in_queue)
        pending = sa.union_all(queued, listed).subquery("pending")
        # the queue's entries first (retries, replays), then ids never synced, then the rest of the
        # watchlist, each by id: the order re-runs repeat, and what a spending ceiling leaves
        # unsynced is what has the most recent copy
        position = sa.func.row_number().over(order_by=(pending.c.rank, pending.c.resource_id)) - 1
        numbered = sa.select(
            sa.literal(day, job_set.c.partition.type),
            pending.c.resource_id,
            (sa.literal(first_batch) + position.self_group().op("/")(sa.literal(batch_size))).label("batch_no"),
            pending.c.origin,
        ).where(sa.true())  # SQLite reads "SELECT ... ON CONFLICT" as a join without a WHERE
        insert = _insert_new(self.dialect).from_select(["partition", "resource_id", "batch_no", "origin"], numbered)
        with self.engine.begin() as conn:
            conn.execute(insert)
            counted = conn.execute(
                sa.select(job_set.c.origin, sa.func.count())
                .where(job_set.c.partition == day, job_set.c.batch_no >= first_batch)
                .group_by(job_set.c.origin)
            ).all()
        added: dict[str, int] = {"watchlist": 0, "retry": 0, "replay": 0}
        added.update({str(origin): n for origin, n in counted})
        if sum(added.values()):
            self.analyze(job_set)
        return added

    def last_batch_no(self, day: date) -> int | None:
        """The day's highest batch number (None: no job set yet); new sub-jobs go after it."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(job_set.c.batch_no)).where(job_set.c.partition == day)).scalar()

    def newest_synced_day(self) -> date | None:
        """The newest day with a completed batch (None: nothing synced yet)."""
        query = sa.select(sa.func.max(batch_ledger.c.partition)).where(batch_ledger.c.status == LedgerStatus.COMPLETED)
        with self.engine.connect() as conn:
            newest = conn.execute(query).scalar()
        return date.fromisoformat(newest) if isinstance(newest, str) else newest

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
                batch_ledger.c.partition == day, batch_ledger.c.status == LedgerStatus.COMPLETED
            )
            query = query.where(job_set.c.batch_no.not_in(done))
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def members_of(self, day: date, batch_nos: list[int]) -> list[Member]:
        """The sub-jobs of all these batches, with their retry-queue context (a read per thousand)."""
        members: list[Member] = []
        with self.engine.connect() as conn:
            for chunk in chunked(batch_nos, 1_000):
                rows = conn.execute(_MEMBERS_OF, {"day": day, "batch_nos": chunk})
                members += [
                    Member(rid, origin, days or 0, tuple(history or ()), dl_id)
                    for rid, origin, days, history, dl_id in rows
                ]
        return members

    def batch_members(self, day: date, batch_no: int) -> list[Member]:
        """The batch's sub-jobs, with their retry-queue context for those that came from it."""
        with self.engine.connect() as conn:
            rows = conn.execute(_BATCH_MEMBERS, {"day": day, "batch_no": batch_no})
            members = {
                rid: Member(rid, origin, days or 0, tuple(history or ()), dl_id)
                for rid, origin, days, history, dl_id in rows
            }
        return list(members.values())

    # -- sync -----------------------------------------------------------------------------

    def stored_states(self, ids: Sequence[str]) -> dict[str, StoredState]:
        with self.engine.connect() as conn:
            rows = conn.execute(batch_statements(self.dialect).stored_states, {"ids": list(ids)})
            return {rid: StoredState(fp, etag) for rid, fp, etag in rows}

    # -- reading --------------------------------------------------------------------------

    def partition_summary(self, day: date) -> dict[str, Any]:
        """The day's figures, from the ledger (the truth about what completed)."""
        summed = (*LEDGER_COUNTS, *LEDGER_CALLS, *LEDGER_KIND_CALLS, LEDGER_EMBEDDED)
        sums = [sa.func.coalesce(sa.func.sum(batch_ledger.c[n]), 0).label(n) for n in summed]
        query = sa.select(
            sa.func.count().label("batches_completed"),
            *sums,
            sa.func.min(batch_ledger.c.started_at).label("started_at"),
            sa.func.max(batch_ledger.c.finished_at).label("finished_at"),
            sa.func.coalesce(sa.func.sum(batch_ledger.c.duration_s), 0.0).label("batch_seconds"),
        ).where(batch_ledger.c.partition == day, batch_ledger.c.status == LedgerStatus.COMPLETED)
        with self.engine.connect() as conn:
            row = dict(conn.execute(query).one()._mapping)
        for name in ("batches_completed", *summed):
            row[name] = int(row[name])  # PostgreSQL sums are Decimal
        row["batch_seconds"] = float(row["batch_seconds"])
        # Every client's calls, written down before they were sent: those of a run that died, a
        # stopped run, a lost claim or a forced re-sync included. The ledger's own sum is the
        # floor for days from before spent_calls existed.
        spent = self.spent_totals(day)
        row["calls"] = max(row["calls"], spent["calls"])
        row.update({k: spent[k] for k in ("listing_calls", "abandoned_calls", "unclosed_calls")})
        jobs = self.job_set_counts(day)
        row["sub_jobs"] = jobs["sub_jobs"]
        row["batches_expected"] = jobs["batches"]
        row["sub_jobs_done"] = sum(row[n] for n in OUTCOMES)
        row["naive_calls"] = 2 * jobs["sub_jobs"]
        return row

    def analyze(self, *tables: sa.Table) -> None:
        """Refresh PostgreSQL's statistics of tables a day just filled. Until autovacuum gets to
        them the planner believes they are near empty and picks nested loops: the conservation
        check took 2.5 s at 10,000 sub-jobs that way, quadratic in the day's size (4 ms after)."""
        if self.dialect != "postgresql":
            return
        with self.engine.begin() as conn:
            for table in tables:
                conn.execute(sa.text(f"ANALYZE {conn.dialect.identifier_preparer.format_table(table)}"))

    def conservation(self, day: date) -> dict[str, int]:
        """Sub-jobs of the day's job set without an outcome, outcomes without a sub-job, and
        outcomes whose tier record (retry queue entry, dead letter entry) is missing."""
        self.analyze(sub_job_outcomes, retry_queue, dead_letter)  # job_set: when it was built
        no_outcome = (
            sa.select(sa.func.count())
            .select_from(
                job_set.outerjoin(
                    sub_job_outcomes,
                    sa.and_(
                        sub_job_outcomes.c.partition == job_set.c.partition,
                        sub_job_outcomes.c.resource_id == job_set.c.resource_id,
                    ),
                )
            )
            .where(job_set.c.partition == day, sub_job_outcomes.c.resource_id.is_(None))
        )
        orphans = sa.select(sa.func.count()).where(
            sub_job_outcomes.c.partition == day,
            ~sa.exists().where(job_set.c.partition == day, job_set.c.resource_id == sub_job_outcomes.c.resource_id),
        )
        by_outcome = (
            sa.select(sub_job_outcomes.c.outcome, sa.func.count())
            .where(sub_job_outcomes.c.partition == day)
            .group_by(sub_job_outcomes.c.outcome)
        )
        retry_missing = sa.select(sa.func.count()).where(
            sub_job_outcomes.c.partition == day,
            sub_job_outcomes.c.outcome == "retry",
            ~sa.exists().where(retry_queue.c.resource_id == sub_job_outcomes.c.resource_id, retry_queue.c.due_on > day),
        )
        dead_missing = sa.select(sa.func.count()).where(
            sub_job_outcomes.c.partition == day,
            sub_job_outcomes.c.outcome == "dead",
            ~sa.exists().where(
                dead_letter.c.partition == day, dead_letter.c.resource_id == sub_job_outcomes.c.resource_id
            ),
        )
        with self.engine.connect() as conn:
            counts: dict[str, int] = {outcome: n for outcome, n in conn.execute(by_outcome)}
            result = {
                "sub_jobs": self.job_set_counts(day)["sub_jobs"],
                "without_outcome": conn.execute(no_outcome).scalar_one(),
                "outcomes_without_sub_job": conn.execute(orphans).scalar_one(),
                "retry_without_queue_entry": conn.execute(retry_missing).scalar_one(),
                "dead_without_dead_letter": conn.execute(dead_missing).scalar_one(),
                "unknown_outcomes": sum(n for o, n in counts.items() if o not in OUTCOMES),
            }
        result.update({o: counts.get(o, 0) for o in OUTCOMES})
        return result

    def batch_progress(self, day: date) -> dict[str, Any]:
        """Batches expected (the job set's) and completed, when the day's first batch started, and
        the completed batches' sub-jobs and how many of them were synced (changed, unchanged, gone)."""
        done = batch_ledger.c.status == LedgerStatus.COMPLETED
        synced = batch_ledger.c.changed + batch_ledger.c.unchanged + batch_ledger.c.gone
        query = sa.select(
            sa.func.count().filter(done),
            sa.func.min(batch_ledger.c.started_at),
            sa.func.coalesce(sa.func.sum(batch_ledger.c.sub_jobs).filter(done), 0),
            sa.func.coalesce(sa.func.sum(synced).filter(done), 0),
        ).where(batch_ledger.c.partition == day)
        with self.engine.connect() as conn:
            completed, first, sub_jobs, synced_n = conn.execute(query).one()
        if first is not None and first.tzinfo is None:
            first = first.replace(tzinfo=UTC)  # SQLite keeps UTC without its zone
        return {
            "expected": self.job_set_counts(day)["batches"],
            "completed": completed,
            "first_started": first,
            "sub_jobs": int(sub_jobs),
            "synced": int(synced_n),
        }

    def error_classes(self, day: date, limit: int = 5) -> dict[str, int]:
        """The day's most frequent error classes among retried and dead-lettered sub-jobs."""
        query = (
            sa.select(sub_job_outcomes.c.error_class, sa.func.count().label("n"))
            .where(sub_job_outcomes.c.partition == day, sub_job_outcomes.c.outcome.in_(("retry", "dead")))
            .group_by(sub_job_outcomes.c.error_class)
            .order_by(sa.desc("n"))
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return {cls or "unknown": n for cls, n in conn.execute(query)}

    def latest_batches(self, day: date, limit: int = 10) -> list[dict[str, Any]]:
        query = (
            sa.select(batch_ledger)
            .where(batch_ledger.c.partition == day, batch_ledger.c.status == LedgerStatus.COMPLETED)
            .order_by(batch_ledger.c.finished_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def outcomes_of(self, day: date) -> dict[str, str]:
        """Every sub-job's outcome on ``day``."""
        query = sa.select(sub_job_outcomes.c.resource_id, sub_job_outcomes.c.outcome).where(
            sub_job_outcomes.c.partition == day
        )
        with self.engine.connect() as conn:
            return {rid: outcome for rid, outcome in conn.execute(query)}

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


# Every operation of the store rides out an outage of the warehouse (``patience.py``), but three
# that must not hold a stop up: a lease's renewal (tried again a third of a lease later), a
# claim's release (an unreleased claim expires with its lease) and a client's spend (its grants
# are asked for again by the spend log; a final count not written leaves the grant, which
# counts at least every call sent).
patient_class(Warehouse, skip=frozenset({"renew_claim", "release_claim", "record_spent"}))


def _insert_new(dialect: str):
    """INSERT into job_set that skips a sub-job already there (a concurrent build's)."""
    insert = postgresql.insert(job_set) if dialect == "postgresql" else sqlite.insert(job_set)
    return insert.on_conflict_do_nothing(index_elements=["partition", "resource_id"])
