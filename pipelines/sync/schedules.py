"""The daily schedule: each day, materialise the day before (in PIPELINE_TIMEZONE)."""

from dagster import (
    DefaultScheduleStatus,
    build_schedule_from_partitioned_job,
)

from pipelines.settings import load_settings
from pipelines.sync.jobs import daily_sync_job
from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope

_settings = load_settings()


def daily_schedule(scope: SourceScope, job):
    # A daily-partitioned job's schedule fires after each partition ends and targets that partition:
    # at SCHEDULE_HOUR:SCHEDULE_MINUTE on day D+1 it runs partition D, in the partitions' timezone.
    return build_schedule_from_partitioned_job(
        job,
        name=scope.label("daily_sync_schedule"),
        hour_of_day=_settings.schedule_hour,
        minute_of_hour=_settings.schedule_minute,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Materialise yesterday's partition of the daily sync.",
    )


daily_sync_schedule = daily_schedule(DEFAULT_SCOPE, daily_sync_job)
