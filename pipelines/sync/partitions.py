"""The daily partitions every asset of the sync shares."""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

from pipelines.settings import load_settings

_settings = load_settings()

daily_partitions = DailyPartitionsDefinition(
    start_date=_settings.pipeline_start_date.isoformat(), timezone=_settings.pipeline_timezone
)


def partition_day(partition_key: str) -> date:
    return date.fromisoformat(partition_key)


def simulated_day(partition_key: str, start: date | None = None) -> int:
    """The embedded sample API's day number for a partition: its first partition is day 1."""
    first = start or _settings.pipeline_start_date
    return (partition_day(partition_key) - first).days + 1
