"""The batch ledger's claims, and a finished batch's one-transaction write.

A batch is *claimed* in the ledger before any call is made (one owner: a claim held by another
run whose lease has not expired is refused), its lease is renewed while it runs, and its write
commits only while the claim is still its own. Everything the batch writes (resources, one
outcome per sub-job, retry queue and dead-letter entries, watchlist changes, the ledger row)
goes in one transaction, so the batch is completed or absent, never half-written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipelines.core.batching import batch_id, chunked
from pipelines.core.listing_probe import ListingMode
from pipelines.core.outcomes import Member, Outcome, StoredState
from pipelines.core.ports import BatchRecord, LostClaimError
from pipelines.core.statuses import DeadLetterStatus, LedgerStatus, QueueStatus
from pipelines.warehouse.batch_rows import (
    batch_statements,
    dead_id,
    dead_row,
    ledger_values,
    outcome_row,
    resource_row,
    retry_row,
    watchlist_changes,
)
from pipelines.warehouse.listings import READ_CHUNK
from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import (
    LEDGER_CALLS,
    LEDGER_COUNTS,
    LEDGER_EMBEDDED,
    LEDGER_KIND_CALLS,
    batch_ledger,
    dead_letter,
    job_set,
    listed_states,
    listings,
    resources,
    retry_queue,
    sub_job_outcomes,
)
from pipelines.warehouse.upsert import bulk_upsert, newer_or_same, resources_set


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


class BatchLedger(Repository):
    """The core's ``BatchStore``: a day's batches, their claims in the ledger, what a batch reads (its
    members, their stored states, what the day's listing served of them) and its one write."""

    def claim_batch(
        self,
        day: date,
        batch_no: int,
        run_id: str,
        token: str,
        lease_seconds: float,
        now: datetime,
        force: bool = False,
    ) -> bool:
        """Take the batch unless it is completed (and not forced) or another run holds a live lease."""
        row: dict[str, Any] = {
            "partition": day,
            "batch_no": batch_no,
            "status": LedgerStatus.RUNNING.value,
            "claim_token": token,
            "lease_expires": now + timedelta(seconds=lease_seconds),
            **dict.fromkeys((*LEDGER_COUNTS, *LEDGER_CALLS), 0),
            "started_at": now,
            "finished_at": now,
            "duration_s": 0.0,
            "run_id": run_id,
        }
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":  # a row locked by a live writer is held by it
                    conn.execute(_LOCK_TIMEOUT)
                where = _claimable_forced if force else _claimable
                return bulk_upsert(conn, batch_ledger, [row], set_=_claim_taken, where=where) == 1
        except sa.exc.OperationalError as exc:
            if "lock timeout" in str(exc):
                return False
            raise

    def renew_claim(self, day: date, batch_no: int, token: str, lease_seconds: float, now: datetime) -> bool:
        return self._set_lease(day, batch_no, token, now + timedelta(seconds=lease_seconds))

    def release_claim(self, day: date, batch_no: int, token: str, now: datetime) -> bool:
        """Give the batch back unwritten (its run stopped): any run may claim it at once."""
        return self._set_lease(day, batch_no, token, now - timedelta(seconds=1))  # claimable: "lease_expires < now"

    def _set_lease(self, day: date, batch_no: int, token: str, expires: datetime) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(_SET_LEASE, {**_mine(day, batch_no, token), "lease_expires": expires}).rowcount == 1

    def ledger_status(self, day: date, batch_nos: list[int]) -> dict[int, tuple[str, datetime]]:
        query = sa.select(batch_ledger.c.batch_no, batch_ledger.c.status, batch_ledger.c.lease_expires).where(
            batch_ledger.c.partition == day, batch_ledger.c.batch_no.in_(batch_nos)
        )
        with self.engine.connect() as conn:
            return {n: (status, lease) for n, status, lease in conn.execute(query)}

    def record_batch(self, rec: BatchRecord) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                _COMPLETE, {**_mine(rec.partition, rec.batch_no, rec.claim_token), **ledger_values(rec)}
            )
            if done.rowcount != 1:
                if self._completed_by(conn, rec):
                    return  # our own write, whose commit was answered by a connection that was lost
                raise LostClaimError(f"batch {batch_id(rec.partition.isoformat(), rec.batch_no)} was taken over")
            self._write_batch(conn, rec)

    def _completed_by(self, conn: sa.Connection, rec: BatchRecord) -> bool:
        row = conn.execute(
            sa.select(batch_ledger.c.status, batch_ledger.c.claim_token).where(
                batch_ledger.c.partition == rec.partition, batch_ledger.c.batch_no == rec.batch_no
            )
        ).first()
        return row is not None and row.status == LedgerStatus.COMPLETED and row.claim_token == rec.claim_token

    def _write_batch(self, conn: sa.Connection, rec: BatchRecord) -> None:
        day, now, result = rec.partition, rec.finished_at, rec.result
        bid = batch_id(day.isoformat(), rec.batch_no)
        by_outcome: dict[Outcome, list] = {o: [] for o in Outcome}
        for r in result.results:
            by_outcome[r.outcome].append(r)
        upsert_resources(conn, result.updates, day, now)
        batch = {"partition": day, "batch_no": rec.batch_no, "run_id": rec.run_id, "recorded_at": now}
        bulk_upsert(conn, sub_job_outcomes, [outcome_row(r) for r in result.results], common=batch)
        members = rec.members.get
        bulk_upsert(
            conn, retry_queue, [retry_row(r, members(r.resource_id), rec, bid) for r in by_outcome[Outcome.RETRY]]
        )
        bulk_upsert(
            conn, dead_letter, [dead_row(r, members(r.resource_id), rec, bid) for r in by_outcome[Outcome.DEAD]]
        )
        for stmt, params in self._batch_updates(rec, by_outcome):
            conn.execute(stmt, params)

    def _batch_updates(self, rec: BatchRecord, by_outcome: dict[Outcome, list]):
        day = rec.partition
        ids = [r.resource_id for r in rec.result.results]
        statements = batch_statements(self.dialect)
        # tier 2: whatever was scheduled for today is consumed; the failures come back tomorrow
        yield statements.queue_done, {"day": day, "ids": ids}
        yield from self._replay_resolutions(rec, day)
        yield from watchlist_changes(statements, by_outcome, day)

    def _replay_resolutions(self, rec: BatchRecord, day: date):
        """A replayed sub-job resolves its dead-letter entry, or sends it back with its history."""
        for r in rec.result.results:
            member = rec.members.get(r.resource_id)
            if member is None or member.dead_letter_id is None or r.outcome is Outcome.RETRY:
                continue
            failed_again = r.outcome is Outcome.DEAD
            yield (
                sa.update(dead_letter)
                .where(dead_letter.c.id == member.dead_letter_id, dead_letter.c.id != dead_id(day, r.resource_id))
                .values(
                    status=DeadLetterStatus.FAILED_AGAIN if failed_again else DeadLetterStatus.RESOLVED,
                    resolved_by=dead_id(day, r.resource_id) if failed_again else day.isoformat(),
                    updated_at=rec.finished_at,
                ),
                {},
            )

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

    def listing_mode(self, day: date) -> ListingMode | None:
        """The mode of the day's finished listing (None: no listing finished for the day)."""
        query = sa.select(listings.c.mode).where(listings.c.partition == day, listings.c.finished_at.is_not(None))
        with self.engine.connect() as conn:
            mode = conn.execute(query).scalar_one_or_none()
        return None if mode is None else ListingMode(mode)

    def listed_ids(self, day: date, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunked(list(ids), READ_CHUNK):
                query = sa.select(listed_states.c.resource_id).where(
                    listed_states.c.partition == day, listed_states.c.resource_id.in_(chunk)
                )
                found.update(conn.execute(query).scalars())
        return found

    def listed(self, day: date, ids: Sequence[str]) -> dict[str, tuple[str, dict | None, Any]]:
        """What the day's listing served of ``ids``: fingerprint, fields, and carried detail."""
        found: dict[str, tuple[str, dict | None, Any]] = {}
        c = listed_states.c
        with self.engine.connect() as conn:
            for chunk in chunked(list(ids), READ_CHUNK):
                query = sa.select(c.resource_id, c.fingerprint, c.projected, c.detail).where(
                    c.partition == day, c.resource_id.in_(chunk)
                )
                found.update((rid, (fp, projected, detail)) for rid, fp, projected, detail in conn.execute(query))
        return found


def resource_rows(updates, day: date, now: datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A batch's resource rows, and the stamps they all share (first_seen, last_checked, last_partition)."""
    return [resource_row(u, now) for u in updates], {"first_seen": now, "last_checked": now, "last_partition": day}


def upsert_resources(conn: sa.Connection, updates, day: date, now: datetime) -> None:
    """A batch's resources in one statement, the shared stamps bound once; an older observation
    never overwrites a newer one."""
    rows, stamps = resource_rows(updates, day, now)
    bulk_upsert(conn, resources, rows, set_=resources_set, where=newer_or_same, common=stamps)


_LOCK_TIMEOUT = sa.text("SET LOCAL lock_timeout = '5s'")

# A claim's policy, module-level so that its statement is compiled once (upsert.bulk_upsert):
# the claim's own time is the new row's started_at, and the status a constant of the SQL.
_COMPLETED: sa.ColumnElement[str] = sa.literal_column(f"'{LedgerStatus.COMPLETED.value}'")


def _claim_taken(excluded, t) -> dict[str, Any]:
    return {n: excluded[n] for n in ("status", "claim_token", "lease_expires", "started_at", "run_id")}


def _claimable(excluded, t):
    """Not completed, and no other run's lease alive (its own run may take it back: a step retry)."""
    return sa.and_(
        t.c.status != _COMPLETED, sa.or_(t.c.lease_expires < excluded.started_at, t.c.run_id == excluded.run_id)
    )


def _claimable_forced(excluded, t):
    """Forced: a completed batch too."""
    return sa.or_(_claimable(excluded, t), t.c.status == _COMPLETED)


# A running batch's ledger row, held by a claim's token: the statements that touch it are built
# once (built per batch, the completion's twenty values were a good part of the warehouse's CPU
# per batch) and bound with ``_mine``'s parameters.
_MINE = sa.and_(
    batch_ledger.c.partition == sa.bindparam("mine_partition"),
    batch_ledger.c.batch_no == sa.bindparam("mine_batch_no"),
    batch_ledger.c.claim_token == sa.bindparam("mine_token"),
    batch_ledger.c.status == LedgerStatus.RUNNING,
)


def _mine(day: date, batch_no: int, token: str) -> dict[str, Any]:
    return {"mine_partition": day, "mine_batch_no": batch_no, "mine_token": token}


_SET_LEASE = sa.update(batch_ledger).where(_MINE).values(lease_expires=sa.bindparam("lease_expires"))

# The ledger row of a batch that completed.
_COMPLETE = (
    sa.update(batch_ledger)
    .where(_MINE)
    .values(
        {
            name: sa.bindparam(name)
            for name in (
                *LEDGER_COUNTS,
                *LEDGER_CALLS,
                *LEDGER_KIND_CALLS,
                LEDGER_EMBEDDED,
                "status",
                "started_at",
                "finished_at",
                "duration_s",
                "run_id",
            )
        }
    )
)
