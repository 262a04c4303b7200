"""A source's operations, declared beside how its API is spoken (``operations:`` in its
declaration): when its day runs, from which day, in what batches, what counts as a day done in
time, and where its alerts go. Each has a default, so a declaration may leave it out; the
deployment's own settings (warehouse, Redis, executor) stay in the environment (settings.py)."""

from __future__ import annotations

from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from pipelines.core.cron import cron_problem
from pipelines.source.credentials import variable_problem
from pipelines.source.spec import Spec


class ScheduleSpec(Spec):
    cron: str = Field(
        "0 1 * * *",
        description="when the day's run starts, in timezone (five cron fields or @daily ...); each run syncs the day "
        "before",
    )
    timezone: str = Field("UTC", description="the timezone of the days (the partitions) and of the cron")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r} (an IANA name: UTC, Europe/Paris, America/New_York)"
            ) from None
        return value


class CompletionSpec(Spec):
    min_ratio: float = Field(
        250 / 300, gt=0, le=1, description="the share of a day's batches (and sub-jobs) that must complete"
    )
    deadline: time = Field(time(6, 0), description="by when, on the day after, in schedule.timezone")
    lookback_days: int = Field(2, ge=1, le=31, description="how many recent days the completion sensor watches")

    @field_validator("deadline", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, int):  # YAML 1.1 reads 12:00 unquoted as 720 (minutes and seconds in base 60)
            raise ValueError(
                f'write the time quoted, deadline: "HH:MM" (YAML read an unquoted time as the number {value})'
            )
        return value


class AlertsSpec(Spec):
    webhook_url_env: str | None = Field(
        None,
        description="the NAME of the variable holding a Slack-compatible incoming webhook URL (a secret; ALERT_... "
        "may be shared by every source); null: alerts go to the log and the alerts table only",
    )

    @field_validator("webhook_url_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        problem = None if value is None else variable_problem(value, allowed=("ALERT_",))
        if problem is not None:
            raise ValueError(problem)
        return value


class Operations(Spec):
    schedule: ScheduleSpec = ScheduleSpec()
    start_date: date = Field(date(2026, 1, 1), description="the first day (partition)")
    batch_size: int = Field(100, ge=1, le=10_000, description="sub-jobs per batch (whole bulk probes when in bulk)")
    completion: CompletionSpec = CompletionSpec()
    alerts: AlertsSpec = AlertsSpec()
