"""What each day's listing served, when the listing is the probe (``core/listing_probe.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa

from pipelines.core.batching import chunked
from pipelines.core.listing_probe import ListingMode, ListingPlan
from pipelines.core.statuses import LedgerStatus
from pipelines.warehouse.schema import batch_ledger, job_set, listed_states, listings
from pipelines.warehouse.upsert import upsert

READ_CHUNK = 5_000


class ListingOps:
    engine: sa.Engine
    dialect: str

    def start_listing(self, day: date, plan: ListingPlan) -> None:
        """The day's listing begins: what an earlier attempt of the day recorded is dropped."""
        row = {"partition": day, "mode": plan.mode.value, "since": plan.since, "watermark": None, "served": 0}
        with self.engine.begin() as conn:
            conn.execute(sa.delete(listed_states).where(listed_states.c.partition == day))
            conn.execute(
                upsert(self.dialect, listings, [{**row, "started_at": datetime.now(UTC), "finished_at": None}])
            )

    def record_listed(self, day: date, fingerprints: Iterable[tuple[str, str]]) -> None:
        rows = [{"partition": day, "resource_id": rid, "fingerprint": fp} for rid, fp in fingerprints]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, listed_states, rows))
            conn.execute(
                sa.update(listings).where(listings.c.partition == day).values(served=listings.c.served + len(rows))
            )

    def finish_listing(self, day: date, watermark: float | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(listings)
                .where(listings.c.partition == day)
                .values(watermark=watermark, finished_at=datetime.now(UTC))
            )

    def listing_mode(self, day: date) -> ListingMode | None:
        """The mode of the day's finished listing (None: no listing finished for the day)."""
        query = sa.select(listings.c.mode).where(listings.c.partition == day, listings.c.finished_at.is_not(None))
        with self.engine.connect() as conn:
            mode = conn.execute(query).scalar_one_or_none()
        return None if mode is None else ListingMode(mode)

    def listed_fingerprints(self, day: date, ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(ids), READ_CHUNK):
                query = sa.select(listed_states.c.resource_id, listed_states.c.fingerprint).where(
                    listed_states.c.partition == day, listed_states.c.resource_id.in_(chunk)
                )
                found.update((rid, fp) for rid, fp in conn.execute(query))
        return found

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
