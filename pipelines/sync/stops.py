"""Stopping a run when the API fails as a whole, and saying so: the Dagster log, an alert of
the failure's own kind (webhook and ``alerts`` row), a halt the run's other steps obey, and a
step failure that Dagster does not retry (a retry would only spend the same calls again)."""

from __future__ import annotations

from datetime import date

from dagster import Failure

from pipelines.alerting.channel import send
from pipelines.alerting.messages import Alert
from pipelines.settings import load_settings
from pipelines.source.errors import ApiFailure
from pipelines.warehouse.store import Warehouse

TITLES = {
    "auth_failed": "The API refused the credential",
    "systemic_failure": "Every resource failed the same way: an API or configuration fault",
    "api_contract": "The API broke its contract",
}


def stop_run(
    log, store: Warehouse, failure: ApiFailure, run_id: str, day: date | None, where: str, source: str | None = None
) -> Failure:
    """Record, alert and answer the Failure to raise; the alert goes out once per run and kind."""
    first = store.halt_of(run_id) is None
    store.halt_run(run_id, day, failure.kind, str(failure))
    log.error(f"{where}: {failure}")
    if first:
        details = {"partition": day.isoformat() if day else "-", "run id": run_id, "what": failure.message[:900]}
        if failure.settings:
            details["check"] = ", ".join(failure.settings)
        if failure.evidence is not None:
            details["example"] = f"{failure.evidence.method} {failure.evidence.url} -> {failure.evidence.status}"
        title = f"{TITLES.get(failure.kind, 'The API failed')}: the run of {day or 'this job'} stopped"
        alert = Alert(failure.kind, day.isoformat() if day else None, title, details, source=source)
        log.warning(f"ALERT {alert.text()}")
        error = send(alert, store, load_settings().alert_webhook_url)
        if error:
            log.error(f"alert webhook failed (the alert is in the alerts table): {error}")
    return Failure(description=str(failure), metadata={"kind": failure.kind}, allow_retries=False)


def halted(store: Warehouse, run_id: str) -> Failure | None:
    """The Failure to raise at once when another step of this run already stopped it."""
    halt = store.halt_of(run_id)
    if halt is None:
        return None
    return Failure(
        description=f"this run was stopped by an earlier step ({halt['kind']}): {halt['message']}", allow_retries=False
    )
