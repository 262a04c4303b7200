"""The IO manager: values passed between steps live in the warehouse, as JSON.

Steps of one run may execute in different processes, on different machines (Celery workers,
Kubernetes pods): what one step returns must be readable by the next without a shared disk.
The values are small (a step's batch numbers, a step's call counts, a day's figures); the day's
data itself goes through the warehouse tables, never through here.
"""

from __future__ import annotations

from typing import Any

import orjson
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from pipelines.sync.resources import _store


class WarehouseIOManager(ConfigurableIOManager):
    """Stores each output as one JSON row of the warehouse's ``step_outputs`` table."""

    url: str = Field(default="sqlite:///.data/warehouse.db", description="the warehouse's SQLAlchemy URL")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        try:
            value = orjson.loads(orjson.dumps(obj))
        except TypeError as exc:
            raise TypeError(
                f"step {context.step_key!r} output {context.name!r}: the warehouse IO manager stores JSON "
                f"values only, not {type(obj).__name__} ({exc})"
            ) from None
        _store(self.url).outputs.put_output(_key(context), context.run_id, value)

    def load_input(self, context: InputContext) -> Any:
        return _store(self.url).outputs.get_output(_key(context))


def _key(context: OutputContext | InputContext) -> str:
    """An asset's value by asset key and partition (any later run may load it); an op's by run and step."""
    if context.has_asset_key:
        return "asset:" + "/".join(context.get_asset_identifier())
    return "step:" + "/".join(context.get_identifier())
