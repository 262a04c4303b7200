"""The daily schedule targets the previous day's partition, in the configured timezone."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from dagster import DefaultScheduleStatus, build_schedule_context

from pipelines.definitions import defs
from pipelines_tests.helpers import ROOT

daily_sync_schedule = defs.resolve_schedule_def("sample_daily_sync_schedule")

PROBE = """
import json
from datetime import datetime
from zoneinfo import ZoneInfo
from dagster import build_schedule_context
from pipelines.definitions import defs
s = defs.resolve_schedule_def("sample_daily_sync_schedule")
tz = ZoneInfo("{tz}")
out = {{}}
for when in ("2026-11-22T06:15", "2026-11-23T06:15"):
    t = datetime.fromisoformat(when).replace(tzinfo=tz)
    reqs = s.evaluate_tick(build_schedule_context(scheduled_execution_time=t)).run_requests
    out[when] = [r.partition_key for r in reqs]
print(json.dumps({{"cron": s.cron_schedule, "tz": s.execution_timezone, "ticks": out}}))
"""


def test_the_schedule_runs_yesterday_and_is_on_by_default():
    assert daily_sync_schedule.default_status is DefaultScheduleStatus.RUNNING
    assert daily_sync_schedule.job_name == "sample_daily_sync_job"
    tick = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    (request,) = daily_sync_schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick)).run_requests
    assert request.partition_key == "2026-11-21"


def test_timezone_and_hour_come_from_the_settings():
    env = {**os.environ, "PIPELINE_TIMEZONE": "America/Los_Angeles", "SCHEDULE_HOUR": "6", "SCHEDULE_MINUTE": "15"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(tz="America/Los_Angeles")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tz"] == "America/Los_Angeles" and out["cron"] == "15 6 * * *"
    # 06:15 in Los Angeles (14:15 UTC) on the 22nd and 23rd: the day before, in Los Angeles
    assert out["ticks"] == {"2026-11-22T06:15": ["2026-11-21"], "2026-11-23T06:15": ["2026-11-22"]}
