"""The rows and statements of a finished batch's one write (``batches.py``): its ledger row, its
resources, one outcome per sub-job, retry-queue and dead-letter entries, watchlist changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from pipelines.core.outcomes import Member, Outcome
from pipelines.core.ports import BatchRecord
from pipelines.core.statuses import DeadLetterStatus, LedgerStatus, Origin, QueueStatus, ResourceStatus
from pipelines.warehouse.one_of import one_of
from pipelines.warehouse.schema import (
    LEDGER_COUNTS,
    LEDGER_EMBEDDED,
    resources,
    retry_queue,
    watchlist,
)
from pipelines.warehouse.watchlist import DEAD_REASON, GONE_REASON


def ledger_values(rec: BatchRecord) -> dict[str, Any]:
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


def resource_row(u, now: datetime) -> dict[str, Any]:
    return {
        "resource_id": u.resource_id,
        "status": u.status,
        "fingerprint": u.fingerprint,
        "etag": u.etag,
        "projected": u.projected,
        "details": u.details,
        "last_changed": now if u.changed else None,
    }


def outcome_row(r) -> dict[str, Any]:
    """A sub-job's own outcome; the batch's partition, number, run and time go once."""
    return {
        "resource_id": r.resource_id,
        "outcome": r.outcome.value,
        "reason": r.reason[:500],
        "error_class": r.error_class,
        "http_status": r.http_status,
        "attempts": r.attempts,
    }


def attempt(r, rec: BatchRecord, bid: str) -> dict[str, Any]:
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


def retry_row(r, member: Member | None, rec: BatchRecord, bid: str) -> dict[str, Any]:
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
        "history": [*member.history, attempt(r, rec, bid)],
        "dead_letter_id": member.dead_letter_id,
        "created_at": rec.finished_at,
    }


def dead_id(day: date, resource_id: str) -> str:
    return f"{day.isoformat()}/{resource_id}"


def dead_row(r, member: Member | None, rec: BatchRecord, bid: str) -> dict[str, Any]:
    member = member or Member(r.resource_id)
    err = r.error
    history = [*member.history, attempt(r, rec, bid)]
    return {
        "id": dead_id(rec.partition, r.resource_id),
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


def watchlist_changes(statements: BatchStatements, by_outcome: dict[Outcome, list], day: date):
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
