"""Scale-out: a day on two Celery worker nodes (SYNC_EXECUTOR=celery, Redis as broker and as the
shared rate), against the same day in one process, in the same run of the benchmark.

* ``two_workers``: the standard day (R = 200/s): bound by the API's rate, so two nodes must keep
  to it and make the same calls, not go faster.
* ``beyond_one_process`` (issue 14, target 5): the API with no rate limit and no latency, which
  one process cannot fill (bulk probes: the day is mostly detail calls). Two nodes pay only where
  there are free cores: the row reports the measured speed-up, one process's own ceiling (its
  requests per second while its batches ran) and what the machine has, so the arithmetic for a
  bigger machine is stated beside what this one showed.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import redis

from pipelines.bench.celery_workers import start_workers
from pipelines.bench.days import describe, minimum_calls
from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure

EXECUTORS = ("in_process", "celery")


def two_workers(stage: Stage, redis_url: str, broker_url: str, concurrency: int = 2, log=print) -> list[dict]:
    """Day 1 and day 2 of the standard day, in one process and then on two Celery nodes."""
    return _on_each_executor(stage, redis_url, broker_url, concurrency, (1, 2), "projected", log)


def beyond_one_process(
    stage: Stage, redis_url: str, broker_url: str, resources: int, concurrency: int = 2, log=print
) -> list[dict]:
    """Day 1 against the API with no rate limit and no latency, in one process and on two nodes."""
    stage.server.configure(resources=resources, latency_ms=0, latency_jitter_ms=0, rate_limit=0)
    unlimited = Stage(stage.server, stage.dagster_home, rate=0, concurrency=stage.concurrency)
    rows = _on_each_executor(unlimited, redis_url, broker_url, concurrency, (1,), "bulk", log)
    for row in rows:
        row["requests_per_busy_s"] = row["server_sync_calls"] / max(1e-9, row["batch_busy_s"])
        row["cores"] = os.cpu_count() or 1
    return rows


def _on_each_executor(
    stage: Stage, redis_url: str, broker_url: str, concurrency: int, days: tuple[int, ...], strategy: str, log
) -> list[dict]:
    redis.Redis.from_url(broker_url).flushdb()
    rows = []
    for executor in EXECUTORS:
        with postgres_database("bench_wh") as warehouse:
            env = stage.env(
                warehouse,
                {"probe.strategy": strategy, "rate.budget": f"bench:{uuid.uuid4().hex}"},
                sync_executor=executor,
                sync_celery_broker_url=broker_url,
                source_rate_limiter_url=redis_url,
            )
            workers = []
            if executor == "celery":
                log(f"  starting 2 Celery worker nodes ({concurrency} processes each) ...")
                workers = start_workers(2, env, Path(tempfile.mkdtemp(prefix="bench-workers-")), concurrency)
            try:
                for day in days:
                    log(f"  {executor} day {day} ...")
                    figures = measure(stage, day, "pipelines.bench.day", f"2026-01-0{day}", env)
                    row = describe(stage, executor, day, figures)
                    row["sub_jobs_per_s"] = row["sub_jobs"] / row["run_wall_s"]
                    row["calls_per_s"] = row["server_calls"] / row["run_wall_s"]
                    row["peak_vs_rate"] = row["server_rate_peak5"] / stage.rate if stage.rate else 0.0
                    row["mean_vs_rate"] = row["server_rate_mean"] / stage.rate if stage.rate else 0.0
                    row["minimum_calls"] = minimum_calls(strategy, row["sub_jobs"], row["changed"])
                    row["calls_vs_minimum"] = row["server_sync_calls"] / max(1, row["minimum_calls"])
                    rows.append(row)
                    log(f"    {row['server_calls']:,} calls in {row['run_wall_s']:.1f}s")
            finally:
                for worker in workers:
                    worker.stop()
    for row in rows:
        base = next(r for r in rows if r["pipeline"] == "in_process" and r["day"] == row["day"])
        row["wall_vs_in_process"] = row["run_wall_s"] / base["run_wall_s"]
    return rows
