"""A source's daily schedule: at each firing of its cron (``operations.schedule``, in its
timezone), materialise the day before. A cron that fires more than once a day asks for the
same day again under the same run key, so the day runs once."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from pipelines.sync.scope import SourceScope


def daily_schedule(scope: SourceScope, job):
    when = scope.operations.schedule
    start = scope.operations.start_date

    @schedule(
        name=scope.label("daily_sync_schedule"),
        cron_schedule=when.cron,
        execution_timezone=when.timezone,
        job=job,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Materialise yesterday's partition of the daily sync ({when.cron}, {when.timezone}).",
    )
    def daily_sync_schedule(context: ScheduleEvaluationContext):
        tz = ZoneInfo(when.timezone)
        tick = context.scheduled_execution_time or datetime.now(tz)
        day = tick.astimezone(tz).date() - timedelta(days=1)
        if day < start:
            return SkipReason(f"{day} is before the first day, {start} (operations.start_date)")
        return RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())

    return daily_sync_schedule
