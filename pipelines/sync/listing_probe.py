"""The day's listing as the probe (probe strategies ``listing`` and ``changed_since``): which
listing to take, and the fingerprint and change marker of every item it serves, written down for
the day's batches (``core/listing_probe.py`` holds the rules)."""

from __future__ import annotations

import time
from datetime import date

from pipelines.core.fingerprint import MissingFieldsError, fingerprint
from pipelines.core.listing_probe import ListingMode, ListingPlan, Markers, marker_seconds, plan_listing
from pipelines.core.selectors import select
from pipelines.source.declaration import SourceDeclaration
from pipelines.source.listing_account import ListingAccount
from pipelines.source.records import embedded_detail, without_detail
from pipelines.warehouse.store import Warehouse


class DayListing:
    """One day's listing, page by page: ``record`` each page, ``finish`` when it is whole."""

    def __init__(self, store: Warehouse, declared: SourceDeclaration, day: date, day_index: int) -> None:
        assert declared.listing is not None  # the declaration refuses these strategies without one
        self.store, self.declared, self.day = store, declared, day
        self.filter = declared.listing.changed_since
        f = self.filter
        self.plan: ListingPlan = plan_listing(
            changed_since=declared.probe.strategy == "changed_since",
            day_index=day_index,
            watermark=store.listings.watermark_before(day) if f is not None else None,
            overlap_seconds=f.overlap_seconds if f else 0.0,
            reconcile_every_days=f.reconcile_every_days if f else 1,
            fmt=f.format if f else "iso8601",
        )
        since = None  # the filter's bound, in changed mode
        if self.plan.mode is ListingMode.CHANGED and self.plan.watermark is not None and f is not None:
            since = self.plan.watermark - f.overlap_seconds
        self.markers = Markers(self.plan.watermark, since)
        self.served = self.unfingerprinted = self.embedded_unusable = 0
        self.warnings: list[str] = []
        store.listings.start_listing(day, self.plan)

    def record(self, items: list[tuple[str, dict]], present: float | None = None) -> list[str]:
        """Write down the page's fingerprints, the fields each item served, and the detail it
        carries when the listing carries them (only for an id new or changed: an unchanged one
        needs none); answer its ids. An item lacking a fingerprint field is not written down:
        its id is probed alone, as one the listing did not serve. ``present``: the API's clock
        (its Date header); unknown, ours."""
        declared = self.declared
        embedded = declared.detail.embedded if self.carries_details else None
        fields = declared.listing.fields if declared.listing else []
        stored = self.store.ledger.stored_states([rid for rid, _ in items]) if embedded is not None else {}
        listed = []
        now = present if present is not None else time.time()
        for rid, item in items:
            if self.filter is not None:
                self.markers.see(
                    rid, marker_seconds(select(item, self.filter.cursor_path, None), self.filter.format), now
                )
            try:
                fp = fingerprint(item, declared.fingerprint)
            except MissingFieldsError:
                self.unfingerprinted += 1
                continue
            detail = None
            if embedded is not None and (rid not in stored or stored[rid].fingerprint != fp):
                detail, problem = embedded_detail(item, rid, declared.detail, declared.id)
                if problem is not None:
                    self.embedded_unusable += 1  # its own detail call, in its batch
            listed.append((rid, fp, without_detail(item, embedded, fields), detail))
        self.store.listings.record_listed(self.day, listed)
        self.served += len(items)
        return [rid for rid, _ in items]

    @property
    def carries_details(self) -> bool:
        embedded = self.declared.detail.embedded
        return embedded is not None and embedded.carried_by == "listing"

    def finish(self, account: ListingAccount) -> None:
        """The listing ended. Whole, the day's batches may rely on it, and the next day's filter
        starts from its watermark once this day has synced whole. Incomplete (it could not
        account for its items), it is partial: what it served is used, every id it did not serve
        is probed (none assumed unchanged, none assumed gone), and no watermark moves. A filter
        the API ignored makes it the full listing it was."""
        m, f = self.markers, self.filter
        if m.future:
            self.warnings.append(
                f"{m.future} items carry a change marker ({f.cursor_path if f else ''}) past the API's own present "
                f"(its Date header), e.g. {', '.join(m.future_sample)}: not trusted for the watermark"
            )
        if not account.complete:
            self.store.listings.finish_listing(self.day, None, ListingMode.PARTIAL)
        elif m.older and f is not None:
            self.warnings.append(
                f"the API ignored the change filter listing.changed_since.param ({f.param}={self.plan.since}): "
                f"{m.older} items older than it were served; the day is taken as the full listing it was "
                "(ids it did not serve are probed, deletions found)"
            )
            self.store.listings.finish_listing(self.day, m.watermark, ListingMode.FULL)
        else:
            self.store.listings.finish_listing(self.day, m.watermark)

    def line(self) -> str:
        since = f" since {self.plan.since}" if self.plan.since else ""
        return f"listing as the probe: {self.plan.mode.value} listing{since}, {self.served} items served"

    def figures(self) -> dict[str, str | int]:
        return {
            "listing_mode": self.plan.mode.value,
            "listing_since": self.plan.since or "",
            "listing_served": self.served,
            "listing_unfingerprinted": self.unfingerprinted,
            "listing_future_markers": self.markers.future,
            "listing_details_unusable": self.embedded_unusable,
            "listing_filter_ignored": self.markers.older,
        }
