"""A day's watchlist listing handed from the watchlist step to the sync, which runs it beside the
batches of the ids already tracked (``sync/listing_beside.py``). Kept here, not in a step's
output, so that any later run of the day (a re-execution, a retry on another worker) still finds
a listing that did not finish."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import listing_handoffs
from pipelines.warehouse.upsert import upsert


@dataclass(frozen=True)
class HandedListing:
    run_id: str  # the run whose watchlist step handed it over
    batch_size: int | None  # the day's batch size, once its job set was built


class Handoffs(Repository):
    def hand_over_listing(self, day: date, run_id: str) -> None:
        """The day's listing is the sync's to run (again, if an earlier one finished)."""
        row = {
            "partition": day,
            "run_id": run_id,
            "batch_size": None,
            "handed_at": datetime.now(UTC),
            "finished_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, listing_handoffs, [row]))

    def note_batch_size(self, day: date, batch_size: int) -> None:
        """The batch size the ids the listing finds new are numbered in (the job set's own)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(listing_handoffs)
                .where(listing_handoffs.c.partition == day, listing_handoffs.c.finished_at.is_(None))
                .values(batch_size=batch_size)
            )

    def handed_listing(self, day: date) -> HandedListing | None:
        """The day's handed listing while it has not finished (None: nothing to list)."""
        query = sa.select(listing_handoffs.c.run_id, listing_handoffs.c.batch_size).where(
            listing_handoffs.c.partition == day, listing_handoffs.c.finished_at.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else HandedListing(row.run_id, row.batch_size)

    def finish_handed_listing(self, day: date) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(listing_handoffs)
                .where(listing_handoffs.c.partition == day)
                .values(finished_at=datetime.now(UTC))
            )
