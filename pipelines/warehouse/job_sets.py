"""A day's job set: its sub-jobs numbered into batches (built once, appended to on a re-run),
and which of its batches are still to do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.core.statuses import LedgerStatus, Origin, QueueStatus
from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import batch_ledger, job_set, resources, retry_queue, watchlist


class JobSets(Repository):
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


def _insert_new(dialect: str):
    """INSERT into job_set that skips a sub-job already there (a concurrent build's)."""
    insert = postgresql.insert(job_set) if dialect == "postgresql" else sqlite.insert(job_set)
    return insert.on_conflict_do_nothing(index_elements=["partition", "resource_id"])
