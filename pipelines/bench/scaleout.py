"""Scale-out: the standard day on two Celery worker nodes (SYNC_EXECUTOR=celery, Redis as broker and
as the shared rate), against the same day in one process, in the same run of the benchmark."""

from __future__ import annotations

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
    redis.Redis.from_url(broker_url).flushdb()
    rows = []
    for executor in EXECUTORS:
        with postgres_database("bench_wh") as warehouse:
            env = stage.env(
                warehouse,
                sync_executor=executor,
                sync_celery_broker_url=broker_url,
                source_rate_limiter_url=redis_url,
                source_rate_limiter_key=f"bench:{uuid.uuid4().hex}",
            )
            workers = []
            if executor == "celery":
                log(f"  starting 2 Celery worker nodes ({concurrency} processes each) ...")
                workers = start_workers(2, env, Path(tempfile.mkdtemp(prefix="bench-workers-")), concurrency)
            try:
                for day in (1, 2):
                    log(f"  {executor} day {day} ...")
                    figures = measure(stage, day, "pipelines.bench.day", f"2026-01-0{day}", env)
                    row = describe(stage, executor, day, figures)
                    row["sub_jobs_per_s"] = row["sub_jobs"] / row["run_wall_s"]
                    row["calls_per_s"] = row["server_calls"] / row["run_wall_s"]
                    row["peak_vs_rate"] = row["server_rate_peak5"] / stage.rate if stage.rate else 0.0
                    row["mean_vs_rate"] = row["server_rate_mean"] / stage.rate if stage.rate else 0.0
                    row["minimum_calls"] = minimum_calls("projected", row["sub_jobs"], row["changed"])
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
