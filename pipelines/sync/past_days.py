"""The guard of a run of a past day (``core/past_days.py``): the run's first step that would
call or schedule anything fails, saying why and how to opt in, before anything is spent."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import Failure

from pipelines.core.past_days import OPT_IN_TAG, opted_in, past_day_problem
from pipelines.sync.partitions import partition_day


def refuse_past_day(context, store, declared) -> None:
    """Raise a Failure when the run's day is a past day and the run did not opt in."""
    if opted_in(context.run.tags):
        return
    day = partition_day(context.partition_key)
    today = datetime.now(ZoneInfo(declared.operations.schedule.timezone)).date()
    started = store.job_sets.last_batch_no(day) is not None
    problem = past_day_problem(day, store.reports.newest_synced_day(), today, declared.spend.max_age_days, started)
    if problem is None:
        return
    message = (
        f"not synced: {problem}. To sync it anyway, launch the run with the tag {OPT_IN_TAG}=true (the "
        "Launchpad's tags, or a backfill's); docs/operations.md says what a backfill costs"
    )
    context.log.error(message)
    raise Failure(description=message, metadata={"kind": "past_day"}, allow_retries=False)
