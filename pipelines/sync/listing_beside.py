"""The day's watchlist listing, run beside the sync of the ids already tracked. No Dagster.

From the second day on, when the listing only finds ids (the probe is another call), nothing the
day's batches do waits for it: the watchlist step hands the listing over (``warehouse/handoffs.py``)
and one sync step runs it on the client of its batches (one rate, one concurrency bound, one
breaker) while they run. The ids it finds new, or finds served again after they were gone, are appended
to the job set in new batches once the listing is whole, and the same step syncs them. A listing
that fails as an outage leaves what it listed written and the handoff pending, for the day's
next run; a failure of the API as a whole (``ApiFailure``) stops the run like any call's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date

from pipelines.core.errors import SourceError
from pipelines.core.meter import CallMeter
from pipelines.source.client import SourceApiClient
from pipelines.source.listing_account import ListingAccount
from pipelines.sync.paged_writes import write_while_listing
from pipelines.warehouse.store import Warehouse
from pipelines.warehouse.watchlist import WatchlistUpdate


@dataclass
class ListedBeside:
    """What the listing beside the sync did."""

    ran: bool = False  # False: an earlier attempt of the day had finished it
    update: WatchlistUpdate = field(default_factory=WatchlistUpdate)
    meter: CallMeter = field(default_factory=CallMeter)
    new_batches: list[int] = field(default_factory=list)
    error: str | None = None  # the listing failed or is incomplete: the handoff stays pending
    account: ListingAccount | None = None  # what the walk served (None: it did not run)

    def figures(self) -> dict[str, int | str]:
        u = self.update
        return {
            "listed": u.listed,
            "reactivated": u.reactivated,
            "refused": u.refused,
            "listing_calls": self.meter.total,
            "new_batches": len(self.new_batches),
            "listing_error": self.error or "",
            "listing_complete": self.account.complete if self.account is not None else True,
        }

    def line(self) -> str:
        if not self.ran:
            return f"watchlist listing beside the sync: already whole; {len(self.new_batches)} new batches to sync"
        outcome = f"incomplete ({self.error}), to be listed again by the day's next run" if self.error else "whole"
        u = self.update
        return (
            f"watchlist listing beside the sync: {outcome}; {u.listed} ids listed ({u.reactivated} reactivated, "
            f"{u.refused} refused) in {self.meter.total} calls; {len(self.new_batches)} new batches to sync"
        )


async def list_beside(
    client: SourceApiClient, store: Warehouse, day: date, batch_size: int, after: int | None
) -> ListedBeside:
    """List the watchlist if the day's handoff is pending, append what it found new to the job
    set, and answer the batches after ``after`` (the last batch planned) that wait to be synced."""
    done = ListedBeside()
    if await asyncio.to_thread(store.handoffs.handed_listing, day) is not None:
        done.ran = True
        done.account = account = client.listing_account()

        def watch(ids: list[str]) -> WatchlistUpdate:
            return store.watchlist.upsert_watchlist(ids, "listing", day)

        try:
            await write_while_listing(client.iter_ids(meter=done.meter, account=account), watch, done.update)
        except SourceError as exc:  # an outage; an ApiFailure (not a SourceError) stops the run
            done.error = str(exc)
        await client.listing_done()  # what its grant did not use goes back to the day's ceiling
        await asyncio.to_thread(store.job_sets.build_job_set, day, batch_size)  # what was listed is kept
        if done.error is None and not account.complete:
            done.error = "; ".join(account.problems())
        if done.error is None:
            await asyncio.to_thread(store.handoffs.finish_handed_listing, day)
    pending = await asyncio.to_thread(store.job_sets.pending_batches, day)
    done.new_batches = [n for n in pending if after is None or n > after]
    return done
