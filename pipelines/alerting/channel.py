"""Sending an alert: the webhook (optional, never raising) and the ``alerts`` table (always)."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from pipelines.alerting.messages import Alert
from pipelines.warehouse.schema import alerts
from pipelines.warehouse.store import Warehouse, utcnow


def post_webhook(url: str, alert: Alert, timeout: float = 5.0) -> str | None:
    """POST the alert; answers None on success, else what went wrong (a failing webhook never
    breaks the sensor that sends it)."""
    try:
        response = httpx.post(url, json=alert.slack_payload(), timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None


def send(alert: Alert, store: Warehouse, webhook_url: str | None) -> str | None:
    """Deliver and record; answers the delivery error, if any."""
    error = post_webhook(webhook_url, alert) if webhook_url else None
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(alerts).values(
                created_at=utcnow(),
                kind=alert.kind,
                partition=alert.partition,
                message=alert.text()[:4000],
                payload=alert.slack_payload(),
                delivered=bool(webhook_url) and error is None,
                delivery_error=error,
            )
        )
    return error
