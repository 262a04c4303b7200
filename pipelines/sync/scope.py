"""One source's names in the code location: its asset keys, group, jobs, ops, resource key and
warehouse namespace.

Every definition of the sync (assets, checks, jobs, schedule, sensors, replay) is made by a
factory that takes a ``SourceScope``, so a code location can hold many sources side by side:
``shop/watchlist`` ... ``shop/dead_letter`` in group ``shop``, job ``shop_daily_sync_job``, the
API client under resource key ``shop_api``, rows in the warehouse's ``shop`` namespace.

A scope also carries its source's ``operations`` (when its day runs, from which day, what counts
as done in time, where alerts go), so two sources keep their own schedules side by side.

``SourceScope()`` (no name) is the single source of a deployment configured by environment
(``SOURCE_DECLARATION``): the names it always
had (``watchlist``, group ``sync``, ``daily_sync_job``, resource ``source_api``, the warehouse's
own tables), so such a deployment upgrades with no renamed asset and no moved row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from dagster import AssetKey, DailyPartitionsDefinition

from pipelines.alerting.channel import AlertRoute
from pipelines.source.operations import Operations
from pipelines.warehouse.store import Warehouse


@dataclass(frozen=True)
class SourceScope:
    name: str | None = None
    # its declaration's operations: its days, schedule, batches, completion and alerts
    operations: Operations = field(default_factory=Operations)

    @cached_property
    def partitions(self) -> DailyPartitionsDefinition:
        """The source's days: from ``operations.start_date``, in ``operations.schedule.timezone``."""
        ops = self.operations
        return DailyPartitionsDefinition(start_date=ops.start_date.isoformat(), timezone=ops.schedule.timezone)

    def alerts(self, context=None) -> AlertRoute:
        """Where this source's alerts go: as the declaration the run's client reads says (the
        same file the definitions were made from), or, with no run (a sensor), as ``operations``."""
        ops = self.api(context).declaration().operations if context is not None else self.operations
        return AlertRoute(self.name, ops.alerts.webhook_url_env)

    def key(self, asset: str) -> AssetKey:
        return AssetKey([self.name, asset] if self.name else [asset])

    def node(self, op: str) -> str:
        """An op's or graph's name: unique in the code location, as Dagster requires."""
        return f"{self.name}__{op}" if self.name else op

    def label(self, thing: str) -> str:
        """A job's, schedule's or sensor's name."""
        return f"{self.name}_{thing}" if self.name else thing

    @property
    def group(self) -> str:
        return self.name or "sync"

    @property
    def api_key(self) -> str:
        """The resource key of this source's API client (and the pool its calling steps share)."""
        return f"{self.name}_api" if self.name else "source_api"

    @property
    def namespace(self) -> str | None:
        return self.name

    @property
    def resource_keys(self) -> set[str]:
        return {self.api_key, "warehouse"}

    def api(self, context):
        return getattr(context.resources, self.api_key)

    def store(self, context) -> Warehouse:
        return context.resources.warehouse.store(self.namespace)

    def spend_log(self, context, day, kind: str):
        """A client's grants of calls for ``day``: the sync's (probes, bulk probes, details) or the
        listing's, within the source's daily spending ceiling."""
        declared = self.api(context).declaration()
        kinds = ("listing",) if kind == "listing" else ("probe", "bulk_probe", "detail")
        return context.resources.warehouse.spend_log(
            day, kind, context.run.run_id, self.namespace, declared.spend_policy(), declared.price(kinds)
        )


DEFAULT_SCOPE = SourceScope()
