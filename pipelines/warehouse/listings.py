"""What each day's listing served, when the listing is the probe (``core/listing_probe.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.core.listing_probe import ListingMode, ListingPlan
from pipelines.core.statuses import LedgerStatus
from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import batch_ledger, job_set, listed_states, listing_accounts, listings
from pipelines.warehouse.upsert import upsert

READ_CHUNK = 5_000


class Listings(Repository):
    def start_listing(self, day: date, plan: ListingPlan) -> None:
        """The day's listing begins: what an earlier attempt of the day recorded is dropped."""
        row = {"partition": day, "mode": plan.mode.value, "since": plan.since, "watermark": None, "served": 0}
        with self.engine.begin() as conn:
            conn.execute(sa.delete(listed_states).where(listed_states.c.partition == day))
            conn.execute(
                upsert(self.dialect, listings, [{**row, "started_at": datetime.now(UTC), "finished_at": None}])
            )

    def record_listed(self, day: date, listed: Iterable[tuple[str, str, dict | None, Any]]) -> None:
        """What the day's listing served: each id's fingerprint, the fields it served and the
        detail it carried (None unless the id is new or changed)."""
        rows = [
            {"partition": day, "resource_id": rid, "fingerprint": fp, "projected": projected, "detail": detail}
            for rid, fp, projected, detail in listed
        ]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, listed_states, rows))
            conn.execute(
                sa.update(listings).where(listings.c.partition == day).values(served=listings.c.served + len(rows))
            )

    def finish_listing(self, day: date, watermark: float | None, mode: ListingMode | None = None) -> None:
        """The day's listing ended; ``mode`` replaces the planned one (PARTIAL: it could not
        account for its items, so it moves no watermark and every id it did not serve is probed)."""
        values: dict = {"watermark": watermark, "finished_at": datetime.now(UTC)}
        if mode is not None:
            values["mode"] = mode.value
        with self.engine.begin() as conn:
            conn.execute(sa.update(listings).where(listings.c.partition == day).values(**values))

    def record_listing_account(self, day: date, run_id: str, figures: dict, refused_sample: list) -> None:
        """A listing walk of the day ended: what it served, and whether that is every item."""
        row = {
            "partition": day,
            "run_id": run_id,
            "complete": bool(figures["complete"]),
            **{k: int(figures[k]) for k in ("pages", "served", "duplicates", "refused")},
            "distinct_ids": int(figures["distinct"]),
            "stated_total": None if figures["stated_total"] < 0 else int(figures["stated_total"]),
            "problem": str(figures["problem"])[:4000],
            "refused_sample": [list(pair) for pair in refused_sample],
            "finished_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, listing_accounts, [row]))

    def listing_account(self, day: date) -> dict | None:
        """The day's last listing walk (None: the day listed nothing: a CSV, or not yet)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(listing_accounts).where(listing_accounts.c.partition == day)).first()
        return dict(row._mapping) if row else None

    def watermark_before(self, day: date) -> float | None:
        """The watermark of the latest earlier day whose listing finished and whose batches all
        completed: a day that did not sync whole moves nothing."""
        query = (
            sa.select(listings.c.partition, listings.c.watermark)
            .where(listings.c.partition < day, listings.c.finished_at.is_not(None), listings.c.watermark.is_not(None))
            .order_by(listings.c.partition.desc())
        )
        with self.engine.connect() as conn:
            for partition, watermark in conn.execute(query).all():
                expected = conn.execute(
                    sa.select(sa.func.count(sa.distinct(job_set.c.batch_no))).where(job_set.c.partition == partition)
                ).scalar_one()
                completed = conn.execute(
                    sa.select(sa.func.count()).where(
                        batch_ledger.c.partition == partition, batch_ledger.c.status == LedgerStatus.COMPLETED
                    )
                ).scalar_one()
                if expected and completed >= expected:
                    return float(watermark)
        return None
