"""Stopping a run, and saying so: when the API fails as a whole (the Dagster log, an alert of the
failure's own kind, webhook and ``alerts`` row), and when the run is told to stop (the UI's
Terminate, SIGTERM, SIGINT). Either way a halt the run's other steps obey, and a step failure
that Dagster does not retry (a retry would only spend the same calls again)."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import date
from typing import Any, TypeVar

from dagster import DagsterExecutionInterruptedError, Failure

from pipelines.alerting.channel import AlertRoute, send
from pipelines.alerting.messages import Alert
from pipelines.core.errors import ApiFailure
from pipelines.core.redact import scrub
from pipelines.settings import load_settings
from pipelines.source import event_loop
from pipelines.warehouse.store import Warehouse

T = TypeVar("T")

TITLES = {
    "auth_failed": "The API refused the credential",
    "systemic_failure": "Every resource failed the same way: an API or configuration fault",
    "api_contract": "The API broke its contract",
}


def stop_run(
    log, store: Warehouse, failure: ApiFailure, run_id: str, day: date | None, where: str, route: AlertRoute
) -> Failure:
    """Record, alert and answer the Failure to raise; the alert goes out once per run and kind."""
    first = store.runs.halt_of(run_id) is None
    store.runs.halt_run(run_id, day, failure.kind, str(failure))
    log.error(f"{where}: {failure}")
    if first:
        details = {"partition": day.isoformat() if day else "-", "run id": run_id, "what": scrub(failure.message[:900])}
        if failure.settings:
            details["check"] = ", ".join(failure.settings)
        if failure.evidence is not None:
            details["example"] = f"{failure.evidence.method} {failure.evidence.url} -> {failure.evidence.status}"
        title = f"{TITLES.get(failure.kind, 'The API failed')}: the run of {day or 'this job'} stopped"
        alert = Alert(failure.kind, day.isoformat() if day else None, title, details, source=route.source)
        log.warning(f"ALERT {alert.text()}")
        error = send(alert, store, route.webhook_url())
        if error:
            log.error(f"alert webhook failed (the alert is in the alerts table): {error}")
    return Failure(description=scrub(str(failure)), metadata={"kind": failure.kind}, allow_retries=False)


def halted(store: Warehouse, run_id: str) -> Failure | None:
    """The Failure to raise at once when another step of this run already stopped it."""
    halt = store.runs.halt_of(run_id)
    if halt is None:
        return None
    return Failure(
        description=f"this run was stopped by an earlier step ({halt['kind']}): {halt['message']}", allow_retries=False
    )


def run_loop(context, store: Warehouse, coro: Coroutine[Any, Any, T], day: date, where: str, route: AlertRoute) -> T:
    """Run a step's calls (``coro``) on the client's event loop; an API failing as a whole stops
    the run (``stop_run``), and so does a stop the run was told (``stopped``)."""
    try:
        return event_loop.run(coro, load_settings().sync_event_loop)
    except ApiFailure as exc:
        raise stop_run(context.log, store, exc, context.run.run_id, day, where, route) from None
    except (KeyboardInterrupt, DagsterExecutionInterruptedError) as exc:
        raise stopped(context.log, store, context.run.run_id, day, where, exc) from None


def stopped(log, store: Warehouse, run_id: str, day: date | None, where: str, interrupt: BaseException) -> Failure:
    """The run was told to stop while this step called the API: its calls in flight are
    cancelled, its batches in flight give their claims back unwritten, its calls are written
    down. Dagster would retry an interrupted step that has a retry policy, and the interrupt is
    spent: so the run is halted (its other steps stop before calling) and this step fails
    without a retry. A new run of the partition finishes the day."""
    why = str(interrupt) or type(interrupt).__name__
    message = (
        f"{where}: the run was told to stop ({why}): the calls in flight were cancelled and nothing half-done "
        "was written; a new run of the partition finishes the day"
    )
    store.runs.halt_run(run_id, day, "stopped", message)
    log.warning(message)
    return Failure(description=message, metadata={"kind": "stopped"}, allow_retries=False)
