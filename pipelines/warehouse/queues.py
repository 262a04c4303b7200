"""Tier 2 and tier 3 in the warehouse: scheduling the retry queue, reading and replaying the dead letter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipelines.core.statuses import DeadLetterStatus, Origin, QueueStatus
from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import dead_letter, job_set, retry_queue
from pipelines.warehouse.upsert import bulk_upsert


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead-letter entries to replay; empty fields do not filter. Only open entries match."""

    ids: Sequence[str] = ()
    resource_ids: Sequence[str] = ()
    error_classes: Sequence[str] = ()
    from_date: date | None = None
    to_date: date | None = None

    def where(self):
        clauses = [dead_letter.c.status == DeadLetterStatus.DEAD]
        if self.ids:
            clauses.append(dead_letter.c.id.in_(list(self.ids)))
        if self.resource_ids:
            clauses.append(dead_letter.c.resource_id.in_(list(self.resource_ids)))
        if self.error_classes:
            clauses.append(dead_letter.c.error_class.in_(list(self.error_classes)))
        if self.from_date:
            clauses.append(dead_letter.c.partition >= self.from_date)
        if self.to_date:
            clauses.append(dead_letter.c.partition <= self.to_date)
        return sa.and_(*clauses)


class Queues(Repository):
    def schedule_retries(self, day: date) -> dict[str, int]:
        """Hand every pending entry due by ``day`` to that day's job set (the latest one per resource)."""
        later = retry_queue.alias("later")
        newer_pending = sa.exists().where(
            later.c.resource_id == retry_queue.c.resource_id,
            later.c.status == QueueStatus.PENDING,
            later.c.due_on <= day,
            later.c.due_on > retry_queue.c.due_on,
        )
        already = sa.exists().where(
            later.c.resource_id == retry_queue.c.resource_id,
            later.c.scheduled_for == day,
            later.c.status != QueueStatus.SUPERSEDED,
        )
        due = sa.and_(retry_queue.c.status == QueueStatus.PENDING, retry_queue.c.due_on <= day)
        with self.engine.begin() as conn:
            superseded = conn.execute(
                sa.update(retry_queue).where(due, newer_pending).values(status=QueueStatus.SUPERSEDED)
            ).rowcount
            conn.execute(
                sa.update(retry_queue).where(due, ~already).values(status=QueueStatus.SCHEDULED, scheduled_for=day)
            )
            counts: dict[str, int] = {
                origin: n
                for origin, n in conn.execute(
                    sa.select(retry_queue.c.origin, sa.func.count())
                    .where(retry_queue.c.scheduled_for == day, retry_queue.c.status != QueueStatus.SUPERSEDED)
                    .group_by(retry_queue.c.origin)
                )
            }
            pending = conn.execute(
                sa.select(sa.func.count()).where(
                    retry_queue.c.status == QueueStatus.PENDING, retry_queue.c.due_on > day
                )
            ).scalar_one()
        return {
            "retry": counts.get("retry", 0),
            "replay": counts.get("replay", 0),
            "superseded": superseded,
            "pending_later": pending,
        }

    # -- dead letter ----------------------------------------------------------------------

    def dead_letters(
        self,
        flt: DeadLetterFilter | None = None,
        day: date | None = None,
        resource_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries matching ``flt`` (open ones only), or of a day / a resource whatever their
        status; the first ``limit`` of them (by day and resource), filtered and cut in SQL."""
        query = sa.select(dead_letter)
        if flt is not None:
            query = query.where(flt.where())
        if day is not None:
            query = query.where(dead_letter.c.partition == day)
        if resource_id is not None:
            query = query.where(dead_letter.c.resource_id == resource_id)
        query = query.order_by(dead_letter.c.partition, dead_letter.c.resource_id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def dead_letter_counts(self, day: date) -> dict[str, int]:
        query = (
            sa.select(dead_letter.c.error_class, sa.func.count())
            .where(dead_letter.c.partition == day)
            .group_by(dead_letter.c.error_class)
        )
        with self.engine.connect() as conn:
            return {cls: n for cls, n in conn.execute(query)}

    def next_job_set_day(self, today: date) -> date:
        """The first day after the latest job set built, or ``today`` when none is."""
        with self.engine.connect() as conn:
            latest = conn.execute(sa.select(sa.func.max(job_set.c.partition))).scalar()
        return max(today, latest + timedelta(days=1)) if latest else today

    def request_replay(self, entries: Sequence[dict[str, Any]], due_on: date, now: datetime) -> int:
        """Queue the entries for ``due_on``'s job set (history kept) and mark them replay_requested."""
        if not entries:
            return 0
        rows = [
            {
                "resource_id": e["resource_id"],
                "due_on": due_on,
                "origin": Origin.REPLAY.value,
                "status": QueueStatus.PENDING.value,
                "scheduled_for": None,
                "tier2_days_used": 0,
                "error_class": e["error_class"],
                "reason": f"replay of dead letter {e['id']}",
                "history": e["history"],
                "dead_letter_id": e["id"],
                "created_at": now,
            }
            for e in entries
        ]
        with self.engine.begin() as conn:
            bulk_upsert(conn, retry_queue, rows)
            conn.execute(
                sa.update(dead_letter)
                .where(dead_letter.c.id.in_([e["id"] for e in entries]), dead_letter.c.status == DeadLetterStatus.DEAD)
                .values(status=DeadLetterStatus.REPLAY_REQUESTED, replay_due_on=due_on, updated_at=now)
            )
        return len(rows)

    def retry_entries(self, resource_id: str) -> list[dict[str, Any]]:
        query = sa.select(retry_queue).where(retry_queue.c.resource_id == resource_id).order_by(retry_queue.c.due_on)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
