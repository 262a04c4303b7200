"""Scale and the client's ceiling (targets 7 and 8), against the API with no latency and no rate.

* The same day at N and at 10 x N sub-jobs (bulk probes: the day is mostly detail calls): its
  time must grow at most 11 x, and its peak RSS stay under 500 MB (the job set is streamed).
* A bare httpx loop making the same detail calls at the same concurrency: the sync's request
  throughput must be at least 0.8 of it.
"""

from __future__ import annotations

import asyncio
import time

import httpx

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


async def _bare_loop(url: str, requests: int, concurrency: int, resources: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits) as http:

        async def one(n: int) -> None:
            async with gate:
                (await http.get(f"/items/{resource_id(n % resources)}/details")).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(requests)))
        return requests / (time.perf_counter() - started)


def bare_httpx(stage: Stage, requests: int, resources: int, log=print) -> float:
    log(f"  bare httpx loop: {requests:,} detail calls at concurrency {stage.concurrency} ...")
    stage.server.configure(resources=resources, latency_ms=0, latency_jitter_ms=0, rate_limit=0, day=1)
    return asyncio.run(_bare_loop(stage.server.url, requests, stage.concurrency, resources))
