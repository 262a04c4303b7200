"""The watchlist: ids added as the listing (or a CSV) serves them, refused when unusable,
reactivated when a resource once found gone is served again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from pipelines.core.batching import chunked
from pipelines.core.ids import id_problem
from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import watchlist
from pipelines.warehouse.upsert import bulk_upsert

WRITE_CHUNK = 5_000
GONE_REASON = "gone at the source"
DEAD_REASON = "in the dead letter"
REFUSED_SAMPLE = 20  # refused ids kept by name for the metadata and the log


@dataclass
class WatchlistUpdate:
    """What one refresh did: ids listed, reactivated, and refused (with why)."""

    listed: int = 0
    reactivated: int = 0
    refused: int = 0
    refused_sample: list[tuple[str, str]] = field(default_factory=list)  # (repr of the id, problem)

    def add(self, other: WatchlistUpdate) -> None:
        self.listed += other.listed
        self.reactivated += other.reactivated
        self.refused += other.refused
        self.refused_sample.extend(other.refused_sample[: REFUSED_SAMPLE - len(self.refused_sample)])

    def refuse(self, rid: str, problem: str) -> None:
        self.refused += 1
        if len(self.refused_sample) < REFUSED_SAMPLE:
            self.refused_sample.append((repr(rid[:80] + ("…" if len(rid) > 80 else "")), problem))


class Watchlist(Repository):
    def upsert_watchlist(self, ids: Iterable[str], source: str, day: date) -> WatchlistUpdate:
        """Add ids (active) and mark listed ones seen on ``day``. An id no URL or column can carry
        is refused (never stored, named in the answer); a resource deactivated as gone before
        ``day`` and served again is active again."""
        update = WatchlistUpdate()
        with self.engine.begin() as conn:
            for chunk in chunked(ids, WRITE_CHUNK):
                good = []
                for rid in dict.fromkeys(chunk):
                    problem = id_problem(rid) if isinstance(rid, str) else f"is not text but {type(rid).__name__}"
                    if problem is None:
                        good.append(rid)
                    else:
                        update.refuse(str(rid), problem)
                if not good:
                    continue
                rows = [
                    {"resource_id": rid, "active": True, "source": source, "added_on": day, "last_listed_on": day}
                    for rid in good
                ]
                bulk_upsert(conn, watchlist, rows, set_=_listed_again)
                update.listed += len(rows)
                update.reactivated += conn.execute(
                    sa.update(watchlist)
                    .where(
                        watchlist.c.resource_id.in_(good),
                        watchlist.c.active.is_(False),
                        watchlist.c.deactivated_reason == GONE_REASON,
                        watchlist.c.deactivated_on < day,
                    )
                    .values(active=True, deactivated_on=None, deactivated_reason=None)
                ).rowcount
        return update

    def watchlist_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(watchlist.c.active, sa.func.count()).group_by(watchlist.c.active))
            counts = {bool(active): n for active, n in rows}
        return {"active": counts.get(True, 0), "inactive": counts.get(False, 0)}


def _listed_again(excluded, table: sa.Table) -> dict[str, Any]:
    """A listed id already tracked only records that it was listed again."""
    return {"last_listed_on": excluded.last_listed_on}
