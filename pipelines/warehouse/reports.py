"""What a day came to, read from the ledger and the outcomes: its figures, the conservation of
its sub-jobs, its progress, its error classes, a resource's history."""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

import sqlalchemy as sa

from pipelines.core.statuses import LedgerStatus
from pipelines.warehouse.job_sets import JobSets
from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import (
    LEDGER_CALLS,
    LEDGER_COUNTS,
    LEDGER_EMBEDDED,
    LEDGER_KIND_CALLS,
    batch_ledger,
    dead_letter,
    job_set,
    retry_queue,
    sub_job_outcomes,
)
from pipelines.warehouse.spent import Spend

OUTCOMES = ("changed", "unchanged", "gone", "retry", "dead")


class Reports(Repository):
    def __init__(self, engine: sa.Engine, job_sets: JobSets, spend: Spend) -> None:
        super().__init__(engine)
        self.job_sets, self.spend = job_sets, spend

    def newest_synced_day(self) -> date | None:
        """The newest day with a completed batch (None: nothing synced yet)."""
        query = sa.select(sa.func.max(batch_ledger.c.partition)).where(batch_ledger.c.status == LedgerStatus.COMPLETED)
        with self.engine.connect() as conn:
            newest = conn.execute(query).scalar()
        return date.fromisoformat(newest) if isinstance(newest, str) else newest

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
        spent = self.spend.spent_totals(day)
        row["calls"] = max(row["calls"], spent["calls"])
        row.update({k: spent[k] for k in ("listing_calls", "abandoned_calls", "unclosed_calls")})
        jobs = self.job_sets.job_set_counts(day)
        row["sub_jobs"] = jobs["sub_jobs"]
        row["batches_expected"] = jobs["batches"]
        row["sub_jobs_done"] = sum(row[n] for n in OUTCOMES)
        row["naive_calls"] = 2 * jobs["sub_jobs"]
        return row

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
                "sub_jobs": self.job_sets.job_set_counts(day)["sub_jobs"],
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
            "expected": self.job_sets.job_set_counts(day)["batches"],
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
