"""What every client spent: calls written down before they are sent (``source/spend.py``), so no
paid call goes uncounted, not even those of a run that died."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.core.statuses import LedgerStatus
from pipelines.warehouse.schema import batch_ledger, spent_calls
from pipelines.warehouse.upsert import upsert


def _progress(excluded, table: sa.Table) -> dict[str, Any]:
    return {"calls": excluded.calls, "updated_at": excluded.updated_at}


def _more(excluded, table: sa.Table):
    """A reservation only ever raises the count, and never touches a final one."""
    return sa.and_(table.c.calls <= excluded.calls, table.c.final.is_(False))


class SpentOps:
    engine: sa.Engine
    dialect: str

    def record_spent(self, day: date, kind: str, token: str, run_id: str, calls: int, final: bool) -> None:
        """The client ``token`` has sent (or is about to send) ``calls`` calls; ``final``: exactly."""
        row = {
            "partition": day,
            "token": token,
            "kind": kind,
            "run_id": run_id,
            "calls": calls,
            "final": final,
            "updated_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            if final:
                conn.execute(upsert(self.dialect, spent_calls, [row]))
            else:
                conn.execute(upsert(self.dialect, spent_calls, [row], set_=_progress, where=_more))

    def spent_totals(self, day: date) -> dict[str, int]:
        """The day's spending: the sync's calls (every client, those of runs that died included),
        the listing's, how many of them are clients that never closed (reserved counts), and how
        many are not in any completed batch's figures (a dead run, a stopped one, a lost claim)."""
        sync = spent_calls.c.kind == "sync"
        query = sa.select(
            sa.func.coalesce(sa.func.sum(spent_calls.c.calls).filter(sync), 0),
            sa.func.coalesce(sa.func.sum(spent_calls.c.calls).filter(~sync), 0),
            sa.func.coalesce(sa.func.sum(spent_calls.c.calls).filter(spent_calls.c.final.is_(False)), 0),
        ).where(spent_calls.c.partition == day)
        in_batches = sa.select(sa.func.coalesce(sa.func.sum(batch_ledger.c.calls), 0)).where(
            batch_ledger.c.partition == day, batch_ledger.c.status == LedgerStatus.COMPLETED
        )
        with self.engine.connect() as conn:
            calls, listing, unclosed = (int(v) for v in conn.execute(query).one())
            completed = int(conn.execute(in_batches).scalar_one())
        return {
            "calls": calls,
            "listing_calls": listing,
            "unclosed_calls": unclosed,
            "abandoned_calls": max(0, calls - completed),
        }
