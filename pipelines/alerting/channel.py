"""Sending an alert: the webhook (optional, never raising) and the ``alerts`` table (always)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from pipelines.alerting.messages import Alert
from pipelines.core.redact import register
from pipelines.warehouse.schema import alerts
from pipelines.warehouse.store import Warehouse, utcnow


@dataclass(frozen=True)
class AlertRoute:
    """Where one source's alerts go: the ``alerts`` table always, and the webhook whose URL is in
    the variable its declaration names (``operations.alerts.webhook_url_env``), read when an
    alert is sent. ``source``: the source's name (None: the one configured by environment)."""

    source: str | None
    webhook_url_env: str | None = None

    def webhook_url(self) -> str | None:
        """The URL, kept out of every log line from here on (a webhook's secret is its path)."""
        url = (os.environ.get(self.webhook_url_env) or "").strip() if self.webhook_url_env else ""
        if not url:
            return None
        path = re.sub(r"^[a-z]+://[^/]*", "", url)
        register([url, *([path] if len(path) >= 16 else [])])
        return url


def shown_webhook(url: str) -> str:
    """What a message may say of a webhook URL: its path is the secret (Slack's are)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[the webhook]"
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/[redacted]"


def post_webhook(url: str, alert: Alert, timeout: float = 5.0) -> str | None:
    """POST the alert; answers None on success, else what went wrong (a failing webhook never
    breaks the sensor that sends it). The answer never holds the URL's secret path or password."""
    try:
        response = httpx.post(url, json=alert.slack_payload(), timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        message = f"{type(exc).__name__}: {exc}"
        try:
            sent_to = str(exc.request.url)
        except RuntimeError:  # no request attached
            sent_to = url
        for secret in sorted({url, sent_to}, key=len, reverse=True):
            message = message.replace(secret, shown_webhook(url))
        return message[:500]
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
                message=alert.text()[:4000].replace("\x00", "\ufffd"),  # PostgreSQL text holds no NUL
                payload=alert.slack_payload(),
                delivered=bool(webhook_url) and error is None,
                delivery_error=error,
            )
        )
    return error


def send_once(alert: Alert, store: Warehouse, webhook_url: str | None, log=None) -> bool:
    """``send`` unless an alert of the same kind for the same partition was already sent (each
    run of a day that finds the same situation would repeat it); answers whether it went out.
    ``log``: where the alert and a delivery failure are also said."""
    with store.engine.connect() as conn:
        sent = conn.execute(
            sa.select(alerts.c.id).where(alerts.c.kind == alert.kind, alerts.c.partition == alert.partition).limit(1)
        ).first()
    if sent is not None:
        return False
    if log is not None:
        log.warning(f"ALERT {alert.text()}")
    error = send(alert, store, webhook_url)
    if error and log is not None:
        log.error(f"alert webhook failed (the alert is in the alerts table): {error}")
    return True
