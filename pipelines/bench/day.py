"""One measured day of the pipeline, in a process of its own (so its peak RSS is its own):
``python -m pipelines.bench.day 2026-01-02`` runs ``daily_sync_job`` for that partition on the
Dagster instance of DAGSTER_HOME, configured by the environment as in production
(SOURCE_DECLARATION, WAREHOUSE_URL, ...), and prints its figures as one JSON line.
With SYNC_EXECUTOR=in_process (the default) the run executes here; with any other executor it is
``dagster job execute``, which hands the steps to that executor (e.g. Celery workers).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from pipelines.bench.cpu import own_cpu
from pipelines.definitions import defs as code_location
from pipelines.settings import load_settings
from pipelines.sync.resources import _store
from pipelines.warehouse.schema import batch_ledger


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """The time covered by at least one of the intervals (their union's length)."""
    total, end = 0.0, float("-inf")
    for start, finish in sorted(intervals):
        if finish <= end:
            continue
        total += finish - max(start, end)
        end = finish
    return total


def run_day(partition: str) -> dict:
    store = _store(load_settings().warehouse_url)
    statements = 0

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def _count(*_args) -> None:
        nonlocal statements
        statements += 1

    instance = DagsterInstance.get()
    cpu, started = own_cpu(), time.perf_counter()
    run_id, success = _execute(instance, partition)
    process_wall, cpu = time.perf_counter() - started, own_cpu() - cpu
    record = instance.get_run_record_by_id(run_id)
    if record is None or record.start_time is None or record.end_time is None:
        raise RuntimeError(f"run {run_id} left no start and end time")
    run_wall = record.end_time - record.start_time
    day = date.fromisoformat(partition)
    query = sa.select(batch_ledger.c.started_at, batch_ledger.c.finished_at).where(
        batch_ledger.c.partition == day, batch_ledger.c.run_id == run_id
    )
    with store.engine.connect() as conn:
        intervals = [(s.timestamp(), f.timestamp()) for s, f in conn.execute(query)]
    summary = store.reports.partition_summary(day)
    return {
        "partition": partition,
        "executor": load_settings().sync_executor,
        "success": success,
        "failures": [] if success else _failures(instance, run_id),
        **step_times(instance, run_id),
        "run_id": run_id,
        "run_wall_s": run_wall,
        "process_wall_s": process_wall,
        "cpu_s": cpu,  # this process's, from the run's start: the client, the engine, Dagster's work
        "batch_busy_s": busy_seconds(intervals),
        "batches": len(intervals),
        "sub_jobs": summary["sub_jobs"],
        "changed": summary["changed"],
        "new": summary["new"],
        "unchanged": summary["unchanged"],
        "retry": summary["retry"],
        "dead": summary["dead"],
        "client_sync_calls": summary["calls"],
        "client_listing_calls": summary["listing_calls"],  # written down by the client, wherever it listed
        "client_throttled": summary["throttled"],
        "bytes_received": summary["bytes_received"],
        "statements": statements,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _execute(instance: DagsterInstance, partition: str) -> tuple[str, bool]:
    """Run the day; its run id and whether it succeeded."""
    if load_settings().sync_executor == "in_process":
        result = (
            code_location()
            .resolve_job_def("daily_sync_job")
            .execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)
        )
        return result.run_id, result.success
    dagster = str(Path(sys.executable).parent / "dagster")
    tags = json.dumps({"dagster/partition": partition})
    proc = subprocess.run(
        [dagster, "job", "execute", "-m", "pipelines.definitions", "-j", "daily_sync_job", "--tags", tags],
        env=os.environ, capture_output=True, text=True,
    )  # fmt: skip
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/partition": partition}), limit=1)
    if not runs:
        raise RuntimeError(f"dagster job execute started no run:\n{proc.stderr[-3000:]}")
    return runs[0].run_id, runs[0].status == DagsterRunStatus.SUCCESS


STEP_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}


def step_label(step_key: str) -> str:
    """``synced_resources.sync_batches[b00000_00029]`` -> ``sync_batches``; a check's step keeps its name."""
    return step_key.rsplit(".", 1)[-1].split("[", 1)[0]


def step_times(instance: DagsterInstance, run_id: str) -> dict:
    """Seconds in each step of the run (steps of one op summed) and the run's seconds in no step
    at all (Dagster's own work between them), from the run's event log."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    spans = []
    for event in instance.all_logs(run_id, of_type=STEP_EVENTS):
        key = event.step_key or ""
        if event.dagster_event_type is DagsterEventType.STEP_START:
            started[key] = event.timestamp
        elif key in started:
            begin = started.pop(key)
            spans.append((begin, event.timestamp))
            seconds[step_label(key)] = seconds.get(step_label(key), 0.0) + event.timestamp - begin
    record = instance.get_run_record_by_id(run_id)
    wall = (record.end_time or 0.0) - (record.start_time or 0.0) if record is not None else 0.0
    return {"step_seconds": seconds, "outside_steps_s": max(0.0, wall - busy_seconds(spans))}


def _failures(instance: DagsterInstance, run_id: str) -> list[str]:
    """What failed in a run, as its event log says (a benchmark row must say why it failed)."""
    failed = instance.all_logs(run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE})
    return [f"{e.step_key or 'run'}: {(e.message or '')[:500]}" for e in failed]


def main(argv: list[str] | None = None) -> None:
    partition = (argv or sys.argv[1:])[0]
    print(json.dumps(run_day(partition)))


if __name__ == "__main__":
    main()
