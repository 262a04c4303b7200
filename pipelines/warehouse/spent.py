"""What every client spent, and what it may still spend: calls granted before they are sent
(``source/spend.py``) within the day's ceiling (``core/ceiling.py``), so no paid call goes
uncounted, not even those of a run that died, and no day spends past its ceiling, whichever
steps, runs and workers spend it."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.core.ceiling import Ceiling, Grant, SpendPolicy
from pipelines.core.statuses import LedgerStatus
from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import batch_ledger, job_set, spend_ceilings, spent_calls, watchlist
from pipelines.warehouse.upsert import upsert

TRACKED_TTL = 10.0  # seconds a day's count of tracked ids is reused by the grants


def _progress(excluded, table: sa.Table) -> dict[str, Any]:
    return {"calls": excluded.calls, "cost": excluded.cost, "updated_at": excluded.updated_at}


def _more(excluded, table: sa.Table):
    """A grant only ever raises the count, and never touches a final one."""
    return sa.and_(table.c.calls <= excluded.calls, table.c.final.is_(False))


class Spend(Repository):
    def record_spent(
        self,
        day: date,
        kind: str,
        token: str,
        run_id: str,
        calls: int,
        final: bool,
        cost: float = 0.0,
        policy: SpendPolicy | None = None,
    ) -> Grant:
        """The client ``token`` asks to have sent ``calls`` calls (costing ``cost``) by its next
        grant; ``final``: it has sent exactly these, and is done. Without ``policy`` every grant
        is whole; with it, a grant stops where the day's ceiling does (every client of the day
        counted, under a lock), and a grant short of ``calls`` says what the ceiling is."""
        row = {
            "partition": day,
            "token": token,
            "kind": kind,
            "run_id": run_id,
            "calls": calls,
            "cost": cost,
            "final": final,
            "updated_at": datetime.now(UTC),
        }
        if final or policy is None:
            with self.engine.begin() as conn:
                if final:
                    conn.execute(upsert(self.dialect, spent_calls, [row]))
                else:
                    conn.execute(upsert(self.dialect, spent_calls, [row], set_=_progress, where=_more))
            return Grant(calls)
        derived = policy.max_calls is None  # worked out from the ids tracked: counted again before a refusal
        ceiling = policy.ceiling(self._tracked_recently(day) if derived else 0)
        with self.engine.connect() as conn:
            self._lock_day(conn, day)
            others = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(spent_calls.c.calls), 0),
                    sa.func.coalesce(sa.func.sum(spent_calls.c.cost), 0.0),
                ).where(spent_calls.c.partition == day, spent_calls.c.token != token)
            ).one()
            mine = conn.execute(
                sa.select(spent_calls.c.calls, spent_calls.c.final).where(
                    spent_calls.c.partition == day, spent_calls.c.token == token
                )
            ).first()
            if mine is not None and mine.final:
                conn.rollback()
                return Grant(int(mine.calls))
            granted = _within(calls, cost, int(others[0]), float(others[1]), ceiling)
            if granted < calls and derived:  # the count it was worked out from may be old: count now
                ceiling = policy.ceiling(self._tracked_recently(day, fresh=True))
                granted = _within(calls, cost, int(others[0]), float(others[1]), ceiling)
            granted = max(granted, int(mine.calls) if mine is not None else 0)  # a grant is never taken back
            unit = cost / calls if calls else 0.0
            row.update(calls=granted, cost=granted * unit)
            conn.execute(upsert(self.dialect, spent_calls, [row], set_=_progress, where=_more))
            conn.commit()
        return Grant(granted, ceiling if granted < calls else None)

    def note_ceiling_reached(self, day: date, run_id: str, ceiling: Ceiling) -> None:
        """The day's ceiling held a call back (the first time is the one kept)."""
        row = {"partition": day, "calls": ceiling.calls, "cost": ceiling.cost, "run_id": run_id}
        with self.engine.begin() as conn:
            conn.execute(
                upsert(self.dialect, spend_ceilings, [{**row, "reached_at": datetime.now(UTC)}], where=_first_stays)
            )

    def _lock_day(self, conn: sa.Connection, day: date) -> None:
        """One grant of the source's day at a time, across processes: a transaction that takes
        the write lock at once (SQLite), or an advisory lock keyed by the source's schema and the
        day (PostgreSQL), held until it commits."""
        if self.dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        key = sa.func.hashtextextended(sa.func.concat(f"spend:{day.isoformat()}:", sa.func.current_schema()), 0)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))

    def _tracked_recently(self, day: date, fresh: bool = False) -> int:
        """``tracked_ids``, counted again at most every ``TRACKED_TTL`` seconds (or now, when
        ``fresh``): a client asks for a grant a few times a second, and a day's ids change slowly.
        An old count can only be too low (a day's listing adds ids): it is counted again before
        a grant is refused on it."""
        cache: dict[date, tuple[float, int]] = self.__dict__.setdefault("_tracked_cache", {})
        now = time.monotonic()
        held = cache.get(day)
        if held is None or fresh or now - held[0] > TRACKED_TTL:
            held = cache[day] = (now, self.tracked_ids(day))
        return held[1]

    def tracked_ids(self, day: date) -> int:
        """The ids the day's ceiling is worked out for: its job set, or the active watchlist when
        that is larger (the day's listing may still be adding to it)."""
        with self.engine.connect() as conn:
            jobs = conn.execute(sa.select(sa.func.count()).where(job_set.c.partition == day)).scalar_one()
            active = conn.execute(sa.select(sa.func.count()).where(watchlist.c.active.is_(True))).scalar_one()
        return max(int(jobs), int(active))

    def ceiling_reached(self, day: date) -> dict | None:
        """The day's ceiling, if it held calls back (None: it never did)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(spend_ceilings).where(spend_ceilings.c.partition == day)).first()
        return dict(row._mapping) if row else None

    def spent_totals(self, day: date) -> dict[str, Any]:
        """The day's spending: the sync's calls (every client, those of runs that died included),
        the listing's, their cost at the declared prices, how many of them are clients that never
        closed (granted counts), and how many are not in any completed batch's figures (a dead
        run, a stopped one, a lost claim)."""
        sync = spent_calls.c.kind == "sync"
        query = sa.select(
            sa.func.coalesce(sa.func.sum(spent_calls.c.calls).filter(sync), 0),
            sa.func.coalesce(sa.func.sum(spent_calls.c.calls).filter(~sync), 0),
            sa.func.coalesce(sa.func.sum(spent_calls.c.calls).filter(spent_calls.c.final.is_(False)), 0),
            sa.func.coalesce(sa.func.sum(spent_calls.c.cost), 0.0),
        ).where(spent_calls.c.partition == day)
        in_batches = sa.select(sa.func.coalesce(sa.func.sum(batch_ledger.c.calls), 0)).where(
            batch_ledger.c.partition == day, batch_ledger.c.status == LedgerStatus.COMPLETED
        )
        with self.engine.connect() as conn:
            calls, listing, unclosed, cost = conn.execute(query).one()
            completed = int(conn.execute(in_batches).scalar_one())
        return {
            "calls": int(calls),
            "listing_calls": int(listing),
            "unclosed_calls": int(unclosed),
            "abandoned_calls": max(0, int(calls) - completed),
            "spent_cost": float(cost),
        }


def _first_stays(excluded, table: sa.Table):
    """The first time a day's ceiling was reached is the one kept."""
    return sa.false()


def _within(calls: int, cost: float, others_calls: int, others_cost: float, ceiling: Ceiling) -> int:
    """How many of ``calls`` (costing ``cost`` in all) fit beside what the others spent."""
    allowed = min(calls, ceiling.calls - others_calls)
    if ceiling.cost is not None and cost > 0:
        allowed = min(allowed, math.floor((ceiling.cost - others_cost) / (cost / calls) + 1e-9))
    return max(0, allowed)
