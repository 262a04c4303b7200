"""The batch ledger's claims, and a finished batch's one-transaction write.

A batch is *claimed* in the ledger before any call is made (one owner: a claim held by another
run whose lease has not expired is refused), its lease is renewed while it runs, and its write
commits only while the claim is still its own. Everything the batch writes (resources, one
outcome per sub-job, retry queue and dead-letter entries, watchlist changes, the ledger row)
goes in one transaction, so the batch is completed or absent, never half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from pipelines.core.batching import batch_id
from pipelines.core.outcomes import Member, Outcome
from pipelines.core.ports import BatchRecord, LostClaimError
from pipelines.core.statuses import DeadLetterStatus, LedgerStatus, Origin, QueueStatus, ResourceStatus
from pipelines.warehouse.one_of import one_of
from pipelines.warehouse.schema import (
    LEDGER_CALLS,
    LEDGER_COUNTS,
    LEDGER_EMBEDDED,
    LEDGER_KIND_CALLS,
    batch_ledger,
    dead_letter,
    resources,
    retry_queue,
    sub_job_outcomes,
    watchlist,
)
from pipelines.warehouse.upsert import bulk_upsert, newer_or_same, resources_set
from pipelines.warehouse.watchlist import DEAD_REASON, GONE_REASON


class BatchOps:
    engine: sa.Engine
    dialect: str

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
                _COMPLETE, {**_mine(rec.partition, rec.batch_no, rec.claim_token), **_ledger_values(rec)}
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
        bulk_upsert(conn, sub_job_outcomes, [_outcome_row(r) for r in result.results], common=batch)
        members = rec.members.get
        bulk_upsert(
            conn, retry_queue, [_retry_row(r, members(r.resource_id), rec, bid) for r in by_outcome[Outcome.RETRY]]
        )
        bulk_upsert(
            conn, dead_letter, [_dead_row(r, members(r.resource_id), rec, bid) for r in by_outcome[Outcome.DEAD]]
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
        yield from _watchlist_changes(statements, by_outcome, day)

    def _replay_resolutions(self, rec: BatchRecord, day: date):
        """A replayed sub-job resolves its dead-letter entry, or sends it back with its history."""
        for r in rec.result.results:
            member = rec.members.get(r.resource_id)
            if member is None or member.dead_letter_id is None or r.outcome is Outcome.RETRY:
                continue
            failed_again = r.outcome is Outcome.DEAD
            yield (
                sa.update(dead_letter)
                .where(dead_letter.c.id == member.dead_letter_id, dead_letter.c.id != _dead_id(day, r.resource_id))
                .values(
                    status=DeadLetterStatus.FAILED_AGAIN if failed_again else DeadLetterStatus.RESOLVED,
                    resolved_by=_dead_id(day, r.resource_id) if failed_again else day.isoformat(),
                    updated_at=rec.finished_at,
                ),
                {},
            )


def resource_rows(updates, day: date, now: datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A batch's resource rows, and the stamps they all share (first_seen, last_checked, last_partition)."""
    return [_resource_row(u, now) for u in updates], {"first_seen": now, "last_checked": now, "last_partition": day}


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


def _ledger_values(rec: BatchRecord) -> dict[str, Any]:
    counts = rec.result.counts()
    subs = len(rec.result.results)
    return {
        "status": LedgerStatus.COMPLETED.value,
        "sub_jobs": subs,
        **{name: counts.get(name, 0) for name in LEDGER_COUNTS if name != "sub_jobs"},
        "calls": rec.meter.total,
        "calls_saved": 2 * subs - rec.meter.total,
        "bytes_received": rec.meter.bytes_received,
        "throttled": rec.meter.throttled,
        "retries": rec.meter.retries,
        **{f"{kind}_calls": rec.meter.calls.get(kind, 0) for kind in ("probe", "bulk_probe", "detail")},
        LEDGER_EMBEDDED: rec.meter.embedded,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "duration_s": (rec.finished_at - rec.started_at).total_seconds(),
        "run_id": rec.run_id,
    }


def _resource_row(u, now: datetime) -> dict[str, Any]:
    return {
        "resource_id": u.resource_id,
        "status": u.status,
        "fingerprint": u.fingerprint,
        "etag": u.etag,
        "projected": u.projected,
        "details": u.details,
        "last_changed": now if u.changed else None,
    }


def _outcome_row(r) -> dict[str, Any]:
    """A sub-job's own outcome; the batch's partition, number, run and time go once."""
    return {
        "resource_id": r.resource_id,
        "outcome": r.outcome.value,
        "reason": r.reason[:500],
        "error_class": r.error_class,
        "http_status": r.http_status,
        "attempts": r.attempts,
    }


def _attempt(r, rec: BatchRecord, bid: str) -> dict[str, Any]:
    err = r.error
    return {
        "partition": rec.partition.isoformat(),
        "batch_id": bid,
        "run_id": rec.run_id,
        "error_class": r.error_class,
        "message": r.reason[:300],
        "status": r.http_status,
        "attempts": r.attempts,
        "url": err.url if err else None,
        "at": rec.finished_at.isoformat(),
    }


def _retry_row(r, member: Member | None, rec: BatchRecord, bid: str) -> dict[str, Any]:
    member = member or Member(r.resource_id)
    return {
        "resource_id": r.resource_id,
        "due_on": rec.partition + timedelta(days=1),
        "origin": (Origin.REPLAY if member.dead_letter_id else Origin.RETRY).value,
        "status": QueueStatus.PENDING.value,
        "scheduled_for": None,
        "tier2_days_used": r.tier2_days_used,
        "error_class": r.error_class,
        "reason": r.reason[:500],
        "history": [*member.history, _attempt(r, rec, bid)],
        "dead_letter_id": member.dead_letter_id,
        "created_at": rec.finished_at,
    }


def _dead_id(day: date, resource_id: str) -> str:
    return f"{day.isoformat()}/{resource_id}"


def _dead_row(r, member: Member | None, rec: BatchRecord, bid: str) -> dict[str, Any]:
    member = member or Member(r.resource_id)
    err = r.error
    history = [*member.history, _attempt(r, rec, bid)]
    return {
        "id": _dead_id(rec.partition, r.resource_id),
        "partition": rec.partition,
        "resource_id": r.resource_id,
        "batch_id": bid,
        "run_id": rec.run_id,
        "error_class": r.error_class or "unknown",
        "reason": r.reason[:500],
        "message": str(err) if err else r.reason,
        "method": err.method if err else None,
        "url": err.url if err else None,
        "request_headers": err.request_headers if err else None,
        "response_status": err.status if err else None,
        "response_headers": err.headers if err else None,
        "body_excerpt": err.body_excerpt if err else None,
        "attempts": sum(a.get("attempts") or 0 for a in history),
        "history": history,
        "status": DeadLetterStatus.DEAD.value,
        "replay_due_on": None,
        "resolved_by": None,
        "created_at": rec.finished_at,
        "updated_at": rec.finished_at,
    }


def _watchlist_changes(statements: BatchStatements, by_outcome: dict[Outcome, list], day: date):
    """Gone and dead resources leave the watchlist; a resource that synced again is back on it."""
    parked = {
        GONE_REASON: [r.resource_id for r in by_outcome[Outcome.GONE]],
        DEAD_REASON: [r.resource_id for r in by_outcome[Outcome.DEAD]],
    }
    for reason, ids in parked.items():
        if ids:
            yield statements.watch_off, {"ids": ids, "day": day, "reason": reason}
    synced = [r.resource_id for o in (Outcome.CHANGED, Outcome.UNCHANGED) for r in by_outcome[o]]
    if synced:
        yield statements.watch_on, {"ids": synced}


@dataclass(frozen=True)
class BatchStatements:
    """What every batch runs, built once per dialect (see one_of.py), its ids bound as ``ids``."""

    queue_done: sa.Update
    watch_off: sa.Update
    watch_on: sa.Update
    stored_states: sa.Select


@lru_cache(maxsize=2)
def batch_statements(dialect: str) -> BatchStatements:
    return BatchStatements(
        queue_done=sa.update(retry_queue)
        .where(
            retry_queue.c.scheduled_for == sa.bindparam("day"),
            retry_queue.c.status == QueueStatus.SCHEDULED,
            one_of(dialect, retry_queue.c.resource_id, "ids"),
        )
        .values(status=QueueStatus.DONE),
        watch_off=sa.update(watchlist)
        .where(one_of(dialect, watchlist.c.resource_id, "ids"), watchlist.c.active.is_(True))
        .values(active=False, deactivated_on=sa.bindparam("day"), deactivated_reason=sa.bindparam("reason")),
        watch_on=sa.update(watchlist)
        .where(one_of(dialect, watchlist.c.resource_id, "ids"), watchlist.c.active.is_(False))
        .values(active=True, deactivated_on=None, deactivated_reason=None),
        stored_states=sa.select(resources.c.resource_id, resources.c.fingerprint, resources.c.etag).where(
            one_of(dialect, resources.c.resource_id, "ids"), resources.c.status == ResourceStatus.LIVE
        ),
    )
