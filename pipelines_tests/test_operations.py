"""A source's operations are its declaration's (``operations:``): schedule, first day, batch size,
completion and alerts. Two sources with different ones load and run side by side; a mistake in
one is refused at load naming its key; the cron reader agrees with Dagster's scheduler."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetKey, instance_for_test
from dagster._utils.schedules import cron_string_iterator

from pipelines.core.cron import CronError, parse_cron
from pipelines.definitions import build_defs
from pipelines.settings import Settings
from pipelines.source.declaration import declare
from pipelines.source.operations import Operations
from pipelines.sync.sensors import watched_days
from pipelines_tests.helpers import SAMPLE_DECLARATION, dg_project

N = 300
OPERATIONS = {
    "eu": """
  operations:
    schedule: {cron: "0 1 * * *", timezone: Europe/Paris}
    start_date: 2026-01-01
    batch_size: 50
    completion: {min_ratio: 0.5, deadline: "04:00", lookback_days: 2}
""",
    "us": """
  operations:
    schedule: {cron: "30 7 * * 1-5", timezone: America/New_York}
    start_date: 2026-02-01
    batch_size: 30
    completion: {min_ratio: 0.9, deadline: "12:00", lookback_days: 3}
    alerts: {webhook_url_env: US_ALERT_WEBHOOK}
""",
}


def source(name: str) -> str:
    text = SAMPLE_DECLARATION.read_text().replace("name: sample", f"name: {name}")
    text = text[: text.index("  operations:")]  # the sample's own (its defaults), replaced
    text = text.replace("resources: 30000, change_rate: 0.2, seed: 7", f"resources: {N}, change_rate: 0.2, seed: 3")
    return text + OPERATIONS[name]


@pytest.fixture
def two_sources(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return dg_project(tmp_path, "ops_team_sources", {name: source(name) for name in OPERATIONS})


def test_two_sources_keep_their_own_schedules_days_and_batches(two_sources, sqlite_warehouse_url):
    defs = build_defs(Settings(warehouse_url=sqlite_warehouse_url), project=two_sources)
    eu, us = (defs.resolve_schedule_def(f"{n}_daily_sync_schedule") for n in ("eu", "us"))
    assert (eu.cron_schedule, eu.execution_timezone) == ("0 1 * * *", "Europe/Paris")
    assert (us.cron_schedule, us.execution_timezone) == ("30 7 * * 1-5", "America/New_York")
    graph = defs.resolve_asset_graph()
    for name, first, tz in (("eu", "2026-01-01", "Europe/Paris"), ("us", "2026-02-01", "America/New_York")):
        for asset in ("watchlist", "job_set", "synced_resources", "dead_letter"):
            partitions = graph.get(AssetKey([name, asset])).partitions_def
            assert (partitions.get_first_partition_key(), partitions.timezone) == (first, tz)

    # a day of each, in one warehouse: each cut into its own batch size
    with instance_for_test() as instance:
        for name, size in (("eu", 50), ("us", 30)):
            job = defs.resolve_job_def(f"{name}_daily_sync_job")
            result = job.execute_in_process(instance=instance, partition_key="2026-02-02")
            assert result.success
            (job_set,) = result.asset_materializations_for_node(f"{name}__job_set")
            assert job_set.metadata["batch_size"].value == size
            assert job_set.metadata["batches"].value == N // size


def test_each_sources_completion_watch_follows_its_own_schedule():
    """The completion sensor watches a day once its cron has fired on or after the day after: a
    weekday cron leaves the weekend's days unwatched until Monday's run."""
    eu = declare(None, {"operations.schedule.cron": "0 1 * * *"}).operations
    changes = {"operations.schedule.cron": "30 7 * * 1-5", "operations.completion.lookback_days": 3}
    us = declare(None, changes).operations
    ny = ZoneInfo("America/New_York")
    monday = date(2026, 3, 9)  # a Monday
    at = lambda hour: datetime.combine(monday, datetime.min.time(), ny).replace(hour=hour)  # noqa: E731
    assert watched_days(at(7), eu) == [date(2026, 3, 8), date(2026, 3, 7)]
    assert watched_days(at(7), us) == []  # Friday's, Saturday's and Sunday's runs are all Monday 07:30
    assert watched_days(at(8), us) == [date(2026, 3, 8), date(2026, 3, 7), date(2026, 3, 6)]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"operations.schedule.cron": "61 1 * * *"}, "operations.schedule.cron"),
        ({"operations.schedule.cron": "0 1 * *"}, "has 4 fields"),
        ({"operations.schedule.cron": "0 0 31 2 *"}, "never fires"),
        ({"operations.schedule.timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"operations.batch_size": 0}, "operations.batch_size"),
        ({"operations.start_date": "yesterday"}, "operations.start_date"),
        ({"operations.completion.min_ratio": 1.5}, "operations.completion.min_ratio"),
        ({"operations.alerts.webhook_url_env": "WAREHOUSE_URL"}, "the deployment's own variable"),
        ({"operations.alerts.webhook_url_env": "https://hooks.example/x"}, "NAME of an environment variable"),
        ({"operations.cron": "0 1 * * *"}, "operations.cron"),  # a key in the wrong place
        ({"operations.completion.deadline": 720}, 'write the time quoted, deadline: "HH:MM"'),  # YAML's 12:00
    ],
)
def test_a_mistake_in_the_operations_is_refused_naming_its_key(change, said):
    with pytest.raises(ValueError, match=said):
        declare(None, change)


def test_a_shared_alert_webhook_variable_may_be_named():
    """ALERT_* is the deployment's, but a webhook is no credential sent to an API: every source
    may send its alerts to the same one."""
    declared = declare(None, {"operations.alerts.webhook_url_env": "ALERT_WEBHOOK_URL"})
    assert "ALERT_WEBHOOK_URL" in declared.variables()
    assert Operations().alerts.webhook_url_env is None


@pytest.mark.parametrize(
    "cron", ["0 1 * * *", "15 6 * * 1-5", "*/20 3,15 * * *", "0 0 1 * *", "30 2 1,15 * 0", "@daily", "0 12 * 2 6"]
)
def test_the_cron_reader_agrees_with_dagsters_scheduler(cron):
    """For each day of a year, our first firing on or after it is Dagster's next tick from its
    midnight (what the completion sensor relies on)."""
    ours = parse_cron(cron)
    tz = ZoneInfo("UTC")
    start = datetime(2026, 1, 1, tzinfo=tz)
    ticks = cron_string_iterator(start.timestamp() - 1, cron, "UTC")
    tick = next(ticks)
    for offset in range(366):
        day = date(2026, 1, 1) + timedelta(days=offset)
        midnight = datetime.combine(day, datetime.min.time(), tz)
        while tick < midnight:
            tick = next(ticks)
        on, hour, minute = ours.first_on_or_after(day) or (None, 0, 0)
        assert datetime.combine(on, datetime.min.time(), tz).replace(hour=hour, minute=minute) == tick, day


def test_a_cron_error_names_the_field():
    with pytest.raises(CronError, match="hour field '24'"):
        parse_cron("0 24 * * *")
    with pytest.raises(CronError, match="day of week field 'mon'"):
        parse_cron("0 1 * * mon")
