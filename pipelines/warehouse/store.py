"""One source's namespace of the warehouse, its tables by job: a repository each (every statement
SQLAlchemy Core with bound parameters).

    store = Warehouse(engine)
    store.ledger     the core's BatchStore: batch claims, what a batch reads, its one write
    store.job_sets   a day's job set, numbered into batches
    store.queues     the retry queue and the dead letter (tiers 2 and 3)
    store.watchlist  the tracked ids
    store.listings   a day's listing: what it served, its account; handoffs: one beside the sync
    store.spend      the calls granted and spent, the day's ceiling
    store.runs       halts, the source's claim on the namespace, learned rates
    store.outputs    what one step hands the next (the IO manager)
    store.reports    what a day came to: figures, conservation, progress, a resource's history
"""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.core.ports import BatchRecord, LostClaimError, utcnow
from pipelines.warehouse.batches import BatchLedger
from pipelines.warehouse.connect import WarehouseNotFoundError, create_warehouse_engine, existing_engine
from pipelines.warehouse.halts import Runs, SourceMismatchError
from pipelines.warehouse.handoffs import Handoffs
from pipelines.warehouse.job_sets import JobSets
from pipelines.warehouse.listings import Listings
from pipelines.warehouse.migrate import check, prepare
from pipelines.warehouse.patience import patient_class
from pipelines.warehouse.queues import DeadLetterFilter, Queues
from pipelines.warehouse.reports import Reports
from pipelines.warehouse.spent import Spend
from pipelines.warehouse.step_outputs import StepOutputs
from pipelines.warehouse.watchlist import Watchlist, WatchlistUpdate

__all__ = [
    "BatchRecord",
    "DeadLetterFilter",
    "LostClaimError",
    "SourceMismatchError",
    "Warehouse",
    "WarehouseNotFoundError",
    "WatchlistUpdate",
    "create_warehouse_engine",
    "open_existing",
    "utcnow",
]


def open_existing(url: str, namespace: str | None = None) -> Warehouse:
    """The warehouse at ``url`` (a source's namespace of it) for a read-only tool: never
    created, never altered, never migrated (at another revision: an error naming the command)."""
    return Warehouse(existing_engine(url, namespace), create=False)


class Warehouse:
    def __init__(self, engine: sa.Engine, create: bool = True) -> None:
        """An empty namespace is created at the newest revision; one at another revision stops
        here, naming the migration command (``migrate.py``). ``create=False``: a tool that acts
        on what is there (the lookup, a replay) checks the revision and makes no table, no
        revision and no change of schema; the lookup, which only reads, writes nothing at all."""
        (prepare if create else check)(engine)
        self.engine = engine
        self.ledger = BatchLedger(engine)
        self.job_sets = JobSets(engine)
        self.queues = Queues(engine)
        self.watchlist = Watchlist(engine)
        self.listings = Listings(engine)
        self.handoffs = Handoffs(engine)
        self.spend = Spend(engine)
        self.runs = Runs(engine)
        self.outputs = StepOutputs(engine)
        self.reports = Reports(engine, self.job_sets, self.spend)


# Every operation of a repository rides out an outage of the warehouse (``patience.py``), but
# three that must not hold a stop up: a lease's renewal (tried again a third of a lease later),
# a claim's release (an unreleased claim expires with its lease) and a client's spend (its grants
# are asked for again by the spend log; a final count not written leaves the grant, which counts
# at least every call sent).
for _repository in (BatchLedger, JobSets, Queues, Watchlist, Listings, Handoffs, Spend, Runs, StepOutputs, Reports):
    patient_class(_repository, skip=frozenset({"renew_claim", "release_claim", "record_spent"}))
