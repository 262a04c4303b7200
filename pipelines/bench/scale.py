"""Scale and the client's ceiling (targets 7 and 8), against the API with no latency and no rate.

* The same day at N and at 10 x N sub-jobs (bulk probes: the day is mostly detail calls): its
  time must grow at most 11 x, and its peak RSS stay under 500 MB (the job set is streamed).
* A bare aiohttp loop making the same detail calls at the same concurrency (what one process of
  this machine can send): the sync's request throughput must be at least 0.8 of it (issue 14).
"""

from __future__ import annotations

import asyncio
import time

from pipelines.bench.ceiling import bare_aiohttp_loop
from pipelines.bench.days import describe
from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure
from pipelines.sample_api.world import resource_id


def one_day(stage: Stage, resources: int, log=print) -> dict:
    stage.server.configure(resources=resources, latency_ms=0, latency_jitter_ms=0, rate_limit=0)
    with postgres_database("bench_wh") as warehouse:
        log(f"  scale: {resources:,} sub-jobs, bulk probes, day 1 ...")
        env = stage.env(warehouse, source_probe_strategy="bulk", source_rate_limit=0)
        figures = measure(stage, 1, "pipelines.bench.day", "2026-01-01", env)
    row = describe(stage, "bulk", 1, figures)
    row["requests_per_s"] = figures["server_calls"] / figures["run_wall_s"]
    row["requests_per_busy_s"] = figures["server_sync_calls"] / max(1e-9, figures["batch_busy_s"])
    return row


def bare_aiohttp(stage: Stage, requests: int, resources: int, log=print) -> float:
    log(f"  bare aiohttp loop: {requests:,} detail calls at concurrency {stage.concurrency} ...")
    stage.server.configure(resources=resources, latency_ms=0, latency_jitter_ms=0, rate_limit=0, day=1)
    paths = [f"/items/{resource_id(n % resources)}/details" for n in range(requests)]
    started = time.perf_counter()
    asyncio.run(bare_aiohttp_loop(stage.server.url, paths, stage.concurrency))
    return requests / (time.perf_counter() - started)
