"""A source's schedule: its cron, in its timezone, runs the day before; two sources keep their own."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dagster import DefaultScheduleStatus, build_schedule_context

from pipelines.definitions import build_defs
from pipelines.definitions import defs as code_location
from pipelines.settings import Settings
from pipelines_tests.helpers import source_file


def tick(defs, name: str, when: datetime):
    context = build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    return defs.resolve_schedule_def(name).evaluate_tick(context)


def requested(defs, name: str, when: datetime) -> list[str]:
    return [request.partition_key for request in tick(defs, name, when).run_requests or []]


def test_the_schedule_runs_yesterday_and_is_on_by_default():
    defs = code_location()
    daily_sync_schedule = defs.resolve_schedule_def("sample_daily_sync_schedule")
    assert daily_sync_schedule.default_status is DefaultScheduleStatus.RUNNING
    assert daily_sync_schedule.job_name == "sample_daily_sync_job"
    assert (daily_sync_schedule.cron_schedule, daily_sync_schedule.execution_timezone) == ("0 1 * * *", "UTC")
    assert requested(defs, "sample_daily_sync_schedule", datetime(2026, 11, 22, 1, 0, tzinfo=UTC)) == ["2026-11-21"]


def test_cron_and_timezone_come_from_the_declaration():
    """``operations.schedule``: 06:15 in Los Angeles (14:15 UTC) runs the day before, in Los
    Angeles; a tick before the first day (``operations.start_date``) asks for nothing."""
    ops = {"cron": "15 6 * * *", "timezone": "America/Los_Angeles"}
    declared = source_file(None, {"operations.schedule": ops, "operations.start_date": "2026-11-21"})
    defs = build_defs(Settings(source_declaration=str(declared)))
    schedule = defs.resolve_schedule_def("daily_sync_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 6 * * *", "America/Los_Angeles")
    la = ZoneInfo("America/Los_Angeles")
    assert requested(defs, "daily_sync_schedule", datetime(2026, 11, 22, 6, 15, tzinfo=la)) == ["2026-11-21"]
    assert requested(defs, "daily_sync_schedule", datetime(2026, 11, 23, 6, 15, tzinfo=la)) == ["2026-11-22"]
    # 06:15 UTC on the 22nd is 22:15 on the 21st in Los Angeles: its day before, the 20th, precedes the first day
    skipped = tick(defs, "daily_sync_schedule", datetime(2026, 11, 22, 6, 15, tzinfo=UTC))
    assert not skipped.run_requests
    assert isinstance(skipped.skip_message, str) and "before the first day" in skipped.skip_message


def test_a_cron_firing_twice_a_day_runs_the_day_once():
    """Two ticks on the same day ask for the same partition under the same run key: Dagster
    launches it once."""
    declared = source_file(None, {"operations.schedule.cron": "0 1,13 * * *"})
    defs = build_defs(Settings(source_declaration=str(declared)))
    keys = set()
    for hour in (1, 13):
        (request,) = tick(defs, "daily_sync_schedule", datetime(2026, 3, 2, hour, tzinfo=UTC)).run_requests
        keys.add((request.run_key, request.partition_key))
    assert keys == {("2026-03-01", "2026-03-01")}
