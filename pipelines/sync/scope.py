"""One source's names in the code location: its asset keys, group, jobs, ops, resource key and
warehouse namespace.

Every definition of the sync (assets, checks, jobs, schedule, sensors, replay) is made by a
factory that takes a ``SourceScope``, so a code location can hold many sources side by side:
``shop/watchlist`` ... ``shop/dead_letter`` in group ``shop``, job ``shop_daily_sync_job``, the
API client under resource key ``shop_api``, rows in the warehouse's ``shop`` namespace.

``SourceScope()`` (no name) is the single source of a deployment configured by environment
(``SOURCE_DECLARATION``): the names it always
had (``watchlist``, group ``sync``, ``daily_sync_job``, resource ``source_api``, the warehouse's
own tables), so such a deployment upgrades with no renamed asset and no moved row.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey

from pipelines.warehouse.store import Warehouse


@dataclass(frozen=True)
class SourceScope:
    name: str | None = None

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
