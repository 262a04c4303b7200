"""Alerting sensors: a day's sync short of its batches (or behind pace), and failed runs."""

import dataclasses
import json
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    run_failure_sensor,
    sensor,
)

from pipelines.alerting.channel import AlertRoute, send
from pipelines.alerting.messages import Alert, completion_alert
from pipelines.core.completion import Progress, Situation, alert_kind, assess
from pipelines.core.cron import parse_cron
from pipelines.settings import load_settings
from pipelines.source.operations import Operations
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope
from pipelines.warehouse.store import Warehouse


def _now(timezone: str) -> datetime:
    """The sensor's clock, in the source's timezone (tests move it)."""
    return datetime.now(ZoneInfo(timezone))


def run_url(instance, partition: str | None, run_id: str | None = None, job_name: str | None = None) -> str | None:
    if run_id is None and partition is not None:
        runs = instance.get_runs(filters=RunsFilter(job_name=job_name, tags={"dagster/partition": partition}), limit=1)
        run_id = runs[0].run_id if runs else None
    return f"{load_settings().dagster_webserver_url.rstrip('/')}/runs/{run_id}" if run_id else None


def watched_days(now: datetime, ops: Operations) -> list[date]:
    """Days whose scheduled run should have started by ``now`` (the cron's first firing on the
    day after), within the lookback, from the first day on."""
    tz, cron = now.tzinfo, parse_cron(ops.schedule.cron)
    days = []
    for back in range(1, ops.completion.lookback_days + 1):
        day = now.date() - timedelta(days=back)
        fires = cron.first_on_or_after(day + timedelta(days=1))
        if fires is None or day < ops.start_date:
            continue
        on, hour, minute = fires
        if datetime.combine(on, time(hour, minute), tz) <= now:
            days.append(day)
    return days


def deadline_of(day: date, tz, ops: Operations) -> datetime:
    return datetime.combine(day + timedelta(days=1), ops.completion.deadline, tz)


def source_sensors(scope: SourceScope, jobs: Sequence[Any] | None = None) -> list[SensorDefinition]:
    """One source's completion sensor, and its failed-run alert (for ``jobs``: the source's own;
    None: every job of the code location, as a single-source deployment always had)."""

    @sensor(
        name=scope.label("completion_sensor"),
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Alerts when fewer than operations.completion.min_ratio of a day's batches completed by "
        "operations.completion.deadline (the next day), when the pace cannot get there in time, or when the "
        "batches closed with fewer than that share of the sub-jobs synced (the rest deferred or dead).",
    )
    def completion_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
        return watch_completion(
            context, warehouse.store(scope.namespace), scope, scope.name and scope.label("daily_sync_job")
        )

    @run_failure_sensor(
        name=scope.label("run_failure_alert_sensor"),
        default_status=DefaultSensorStatus.RUNNING,
        monitored_jobs=jobs,
        description="Alerts through the same channel when a run "
        f"{'of ' + scope.name + ' ' if scope.name else 'of this code location '}fails.",
    )
    def run_failure_alert_sensor(context: RunFailureSensorContext, warehouse: WarehouseResource) -> None:
        run = context.dagster_run
        partition = run.tags.get("dagster/partition")
        message = context.failure_event.message or "run failed"
        alert = Alert(
            "run_failed",
            partition,
            f"Run of {run.job_name}{' for ' + partition if partition else ''} failed",
            {"job": run.job_name, "partition": partition or "-", "run id": run.run_id, "error": message[:500]},
            run_url(context.instance, partition, run.run_id),
            source=scope.name,
        )
        _deliver(context.log, alert, warehouse.store(scope.namespace), scope.alerts())

    return [completion_sensor, run_failure_alert_sensor]


def watch_completion(
    context: SensorEvaluationContext, store: Warehouse, scope: SourceScope, job_name: str | None = None
) -> SensorResult:
    ops = scope.operations
    now = _now(ops.schedule.timezone)
    state: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    notes = []
    days = watched_days(now, ops)
    for day in days:
        key = day.isoformat()
        p = store.reports.batch_progress(day)
        progress = Progress(
            key,
            p["expected"],
            p["completed"],
            p["first_started"],
            now,
            deadline_of(day, now.tzinfo, ops),
            sub_jobs=p["sub_jobs"],
            synced=p["synced"],
        )
        situation = assess(progress, ops.completion.min_ratio)
        previous = Situation(state[key]) if key in state else None
        kind = alert_kind(previous, situation)
        state[key] = situation.value
        notes.append(f"{key}: {situation.value} ({p['completed']}/{p['expected']})")
        if kind is None:
            continue
        alert = completion_alert(
            kind,
            key,
            p["completed"],
            p["expected"],
            progress.needed(ops.completion.min_ratio),
            store.reports.error_classes(day),
            run_url(context.instance, key, job_name=job_name),
            projected=progress.projected() if kind == "behind_pace" else None,
            synced=(p["synced"], p["sub_jobs"]),
        )
        _deliver(context.log, dataclasses.replace(alert, source=scope.name), store, scope.alerts())
    keep = {d.isoformat() for d in days}
    return SensorResult(
        cursor=json.dumps({k: v for k, v in state.items() if k in keep}),
        skip_reason="; ".join(notes) or "no day to watch yet",
    )


completion_sensor, run_failure_alert_sensor = source_sensors(DEFAULT_SCOPE)


def _deliver(log, alert: Alert, store, route: AlertRoute) -> None:
    log.warning(f"ALERT {alert.text()}")
    error = send(alert, store, route.webhook_url())
    if error:
        log.error(f"alert webhook failed (the alert is in the alerts table): {error}")
