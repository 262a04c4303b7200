"""The completion and run-failure sensors over a real instance, alerting a real loopback webhook."""

import sqlite3
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterEventType,
    RunsFilter,
    build_run_status_sensor_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from pipelines.source.operations import AlertsSpec, Operations
from pipelines.sync import sensors
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.scope import SourceScope
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import alerts, batch_ledger
from pipelines_tests.helpers import WebhookReceiver, api_resource

DAY = "2026-01-01"
AFTER_DEADLINE = datetime(2026, 1, 2, 7, 0, tzinfo=UTC)  # deadline: 06:00 the next day
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
HOOK = "TEST_ALERT_WEBHOOK_URL"
# the sensors of a source whose declaration sends its alerts to the webhook in HOOK
completion_sensor, run_failure_alert_sensor = sensors.source_sensors(
    SourceScope(None, Operations(alerts=AlertsSpec(webhook_url_env=HOOK)))
)


@pytest.fixture
def hook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def synced_day(tmp_path_factory):
    """A day of 12 batches synced once for the module, on a real instance: each test gets a copy
    of its warehouse (the instance, which the sensors only read runs from, is shared)."""
    path = tmp_path_factory.mktemp("synced") / "warehouse.db"
    res = {
        "source_api": api_resource(None, {"client.sample.resources": 1_200}),
        "warehouse": WarehouseResource(url=f"sqlite:///{path}"),
    }
    with instance_for_test() as instance:
        materialize(
            [watchlist, retry_queue, job_set, synced_resources],
            partition_key=DAY,
            resources=res,
            instance=instance,
            run_config=QUIET,
        )
        yield instance, path


@pytest.fixture
def world(synced_day, sqlite_warehouse_url, hook, monkeypatch):
    """The synced day, in a warehouse of the test's own; the sensors alert ``hook``."""
    instance, template = synced_day
    monkeypatch.setenv(HOOK, hook.url)
    copy = sa.engine.make_url(sqlite_warehouse_url).database
    with sqlite3.connect(template) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return instance, WarehouseResource(url=sqlite_warehouse_url)


def evaluate(instance, warehouse, now, monkeypatch, cursor=None):
    monkeypatch.setattr(sensors, "_now", lambda timezone: now)
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": warehouse})
    return completion_sensor(context)


def drop_batches(warehouse, keep: int):
    with warehouse.store().engine.begin() as conn:
        conn.execute(sa.delete(batch_ledger).where(batch_ledger.c.batch_no >= keep))


def alert_rows(warehouse):
    with warehouse.store().engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(alerts).order_by(alerts.c.id))]


def test_no_alert_when_enough_batches_completed(world, hook, monkeypatch):
    instance, warehouse = world
    result = evaluate(instance, warehouse, AFTER_DEADLINE, monkeypatch)
    assert "2026-01-01: ok (12/12)" in result.skip_reason.skip_message
    assert hook.bodies == [] and alert_rows(warehouse) == []


def test_one_alert_when_too_few_and_no_repeat(world, hook, monkeypatch):
    instance, warehouse = world
    drop_batches(warehouse, keep=8)  # 8 of 12 < 250/300
    first = evaluate(instance, warehouse, AFTER_DEADLINE, monkeypatch)
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert body["kind"] == "short" and body["partition"] == DAY
    assert "8 of 12 batches completed by the deadline" in body["text"]
    assert body["blocks"][0]["type"] == "section"
    run_id = instance.get_runs(filters=RunsFilter(tags={"dagster/partition": DAY}), limit=1)[0].run_id
    assert f"/runs/{run_id}" in body["text"]  # a link to the run
    (row,) = alert_rows(warehouse)
    assert row["kind"] == "short" and row["delivered"] and row["delivery_error"] is None
    again = evaluate(instance, warehouse, AFTER_DEADLINE, monkeypatch, cursor=first.cursor)
    assert len(hook.bodies) == 1 and len(alert_rows(warehouse)) == 1  # same situation: no repeat
    # the day is finished later: one recovery message
    materialize(
        [watchlist, retry_queue, job_set, synced_resources],
        partition_key=DAY,
        instance=instance,
        resources={"source_api": api_resource(None, {"client.sample.resources": 1_200}), "warehouse": warehouse},
        run_config=QUIET,
        selection=[synced_resources],
    )
    evaluate(instance, warehouse, AFTER_DEADLINE, monkeypatch, cursor=again.cursor)
    assert [b["kind"] for b in hook.bodies] == ["short", "recovered"]


def test_pace_alert_before_the_deadline(world, hook, monkeypatch):
    instance, warehouse = world
    drop_batches(warehouse, keep=2)
    with warehouse.store().engine.begin() as conn:  # two batches done in the first two hours of the run
        conn.execute(sa.update(batch_ledger).values(started_at=datetime(2026, 1, 2, 1, 0, tzinfo=UTC)))
    evaluate(instance, warehouse, datetime(2026, 1, 2, 3, 0, tzinfo=UTC), monkeypatch)
    (body,) = hook.bodies
    assert body["kind"] == "behind_pace"
    assert "cannot reach 10 in time" in body["text"] and "projected by deadline" in body["text"]


def defer_everything(warehouse) -> None:
    """As an API down all day leaves a day: every batch completed, every sub-job sent to tier 2."""
    with warehouse.store().engine.begin() as conn:
        conn.execute(
            sa.update(batch_ledger).values(changed=0, new=0, unchanged=0, gone=0, retry=batch_ledger.c.sub_jobs)
        )


def test_an_api_down_all_day_alerts_although_every_batch_completed(world, hook, monkeypatch):
    instance, warehouse = world
    defer_everything(warehouse)
    before_deadline = datetime(2026, 1, 2, 2, 0, tzinfo=UTC)  # every batch closed: nothing more will sync
    result = evaluate(instance, warehouse, before_deadline, monkeypatch)
    assert "deferred (12/12)" in result.skip_reason.skip_message
    (body,) = hook.bodies
    assert body["kind"] == "deferred"
    assert "only 0 of 1200 sub-jobs were synced" in body["text"] and "synced / sub-jobs" in body["text"]
    evaluate(instance, warehouse, AFTER_DEADLINE, monkeypatch, cursor=result.cursor)
    assert len(hook.bodies) == 1  # still deferred at the deadline: no repeat


def test_no_job_set_by_the_deadline_alerts(world, hook, monkeypatch):
    instance, warehouse = world
    evaluate(instance, warehouse, datetime(2026, 1, 3, 7, 0, tzinfo=UTC), monkeypatch)  # 2026-01-02 never ran
    assert [b["kind"] for b in hook.bodies] == ["no_job_set"]
    assert hook.bodies[0]["partition"] == "2026-01-02"


def test_a_failing_webhook_never_breaks_the_sensor(world, hook, monkeypatch):
    instance, warehouse = world
    hook.status = 500
    drop_batches(warehouse, keep=3)
    result = evaluate(instance, warehouse, AFTER_DEADLINE, monkeypatch)
    assert result.cursor  # it returned normally
    (row,) = alert_rows(warehouse)
    assert not row["delivered"] and "500" in row["delivery_error"]


def test_run_failure_alerts_through_the_same_channel(world, hook, tmp_path):
    instance, warehouse = world
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("name\nx\n")
    result = materialize(
        [watchlist],
        partition_key="2026-01-02",
        instance=instance,
        raise_on_error=False,
        resources={"source_api": api_resource(), "warehouse": warehouse},
        run_config={**QUIET, "ops": {"watchlist": {"config": {"csv_path": str(bad_csv)}}}},
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type is DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"warehouse": warehouse},
    ).for_run_failure()
    run_failure_alert_sensor(context)
    (body,) = hook.bodies
    assert body["kind"] == "run_failed" and body["partition"] == "2026-01-02"
    assert result.run_id in body["text"] and "failed" in body["text"]
    assert alert_rows(warehouse)[0]["kind"] == "run_failed"
