"""The day's listing as the probe (probe strategies ``listing`` and ``changed_since``): which
listing to take, and the fingerprint and change marker of every item it serves, written down for
the day's batches (``core/listing_probe.py`` holds the rules)."""

from __future__ import annotations

from datetime import date

from pipelines.core.fingerprint import MissingFieldsError, fingerprint
from pipelines.core.listing_probe import ListingPlan, later, marker_seconds, plan_listing
from pipelines.source.declaration import SourceDeclaration
from pipelines.source.selectors import select
from pipelines.warehouse.store import Warehouse


class Listing:
    """One day's listing, page by page: ``record`` each page, ``finish`` when it is whole."""

    def __init__(self, store: Warehouse, declared: SourceDeclaration, day: date, day_index: int) -> None:
        assert declared.listing is not None  # the declaration refuses these strategies without one
        self.store, self.declared, self.day = store, declared, day
        self.filter = declared.listing.changed_since
        f = self.filter
        self.plan: ListingPlan = plan_listing(
            changed_since=declared.probe.strategy == "changed_since",
            day_index=day_index,
            watermark=store.watermark_before(day) if f is not None else None,
            overlap_seconds=f.overlap_seconds if f else 0.0,
            reconcile_every_days=f.reconcile_every_days if f else 1,
            fmt=f.format if f else "iso8601",
        )
        self.watermark = self.plan.watermark
        self.served = self.unfingerprinted = 0
        store.start_listing(day, self.plan)

    def record(self, items: list[tuple[str, dict]]) -> list[str]:
        """Write down the page's fingerprints; its ids. An item lacking a fingerprint field is
        not written down: its id is probed alone, as one the listing did not serve."""
        fingerprints = []
        for rid, item in items:
            try:
                fingerprints.append((rid, fingerprint(item, self.declared.fingerprint)))
            except MissingFieldsError:
                self.unfingerprinted += 1
            if self.filter is not None:
                marker = marker_seconds(select(item, self.filter.cursor_path, None), self.filter.format)
                self.watermark = later(self.watermark, marker)
        self.store.record_listed(self.day, fingerprints)
        self.served += len(items)
        return [rid for rid, _ in items]

    def finish(self) -> None:
        """The listing is whole: the day's batches may rely on it, and the next day's filter
        starts from its watermark once this day has synced whole."""
        self.store.finish_listing(self.day, self.watermark)

    def line(self) -> str:
        since = f" since {self.plan.since}" if self.plan.since else ""
        return f"listing as the probe: {self.plan.mode.value} listing{since}, {self.served} items served"

    def figures(self) -> dict[str, str | int]:
        return {
            "listing_mode": self.plan.mode.value,
            "listing_since": self.plan.since or "",
            "listing_served": self.served,
            "listing_unfingerprinted": self.unfingerprinted,
        }
