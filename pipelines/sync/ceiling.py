"""The day's spending ceiling, said loudly when it binds: the step's log and one alert a day.
The run then ends on the ``spend_ceiling`` check of ``synced_resources``, which fails it."""

from __future__ import annotations

from datetime import date

from pipelines.alerting.channel import AlertRoute, send_once
from pipelines.alerting.messages import Alert
from pipelines.warehouse.store import Warehouse


def report_ceiling(log, store: Warehouse, day: date, run_id: str, route: AlertRoute, reached: str | None) -> None:
    """Say that the ceiling held this step's calls back (``reached``: the ceiling; None: it did not)."""
    if reached is None:
        return
    message = (
        f"the day's spending ceiling ({reached}) is reached: no further call goes out today; the day's remaining "
        "sub-jobs go to the retry queue unsent (outcome retry, error class spend_ceiling), first in line tomorrow. "
        "If the day really needs more, raise spend.max_calls, spend.max_cost or spend.headroom in the declaration"
    )
    log.error(message)
    details = {"partition": day.isoformat(), "run id": run_id, "ceiling": reached, "what": message[:900]}
    title = f"The spending ceiling of {day} is reached: calls stopped, the rest deferred to tomorrow"
    send_once(
        Alert("spend_ceiling", day.isoformat(), title, details, source=route.source), store, route.webhook_url(), log
    )
