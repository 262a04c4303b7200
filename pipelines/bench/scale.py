"""Scale and the client's ceiling (targets 7 and 8), against the API with no latency and no rate.

* The same day at N and at 10 x N sub-jobs (bulk probes: the day is mostly detail calls): its
  time must grow at most 11 x, and its peak RSS stay under 500 MB (the job set is streamed).
* The 10 x N day again at the commit before issue 14 (``baseline.BASELINE``, from a worktree),
  in the same run: issue 14's target 2 is that day 3 x faster.
* A bare aiohttp loop making the same detail calls at the same concurrency (what one process of
  this machine can send), on asyncio's loop and on uvloop, the faster counted: the sync's request
  throughput must be at least 0.8 of it (issue 14).
"""

from __future__ import annotations

import time
from pathlib import Path

from pipelines.bench.ceiling import bare_aiohttp_loop
from pipelines.bench.cpu import CpuSplit, own_cpu
from pipelines.bench.days import describe
from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure
from pipelines.sample_api.world import resource_id
from pipelines.source import event_loop


def one_day(stage: Stage, resources: int, log=print, version: str = "this commit", cwd: Path | None = None) -> dict:
    """Day 1 of ``resources`` sub-jobs; from ``cwd`` (a baseline's worktree), that checkout's."""
    stage.server.configure(resources=resources, latency_ms=0, latency_jitter_ms=0, rate_limit=0)
    with postgres_database("bench_wh") as warehouse:
        log(f"  scale: {resources:,} sub-jobs, bulk probes, day 1, at {version} ...")
        if cwd is None:
            env = stage.env(warehouse, {"probe.strategy": "bulk", "rate.requests_per_second": 0})
        else:  # the baseline's checkout knew only the flat variables
            env = stage.baseline_env(warehouse, source_probe_strategy="bulk", source_rate_limit=0)
        env.pop("PYTHONPATH", None)
        split = CpuSplit(stage.server.process.pid)
        figures = measure(stage, 1, "pipelines.bench.day", "2026-01-01", env, cwd)
        row = describe(stage, "bulk", 1, figures)
        row.update(split.done(figures["server_calls"]))
    if "cpu_s" in figures:  # a baseline's checkout may not say
        row["sync_cpu_us"] = figures["cpu_s"] / max(1, figures["server_calls"]) * 1e6
    row["version"] = version
    row["requests_per_s"] = figures["server_calls"] / figures["run_wall_s"]
    row["requests_per_busy_s"] = figures["server_sync_calls"] / max(1e-9, figures["batch_busy_s"])
    return row


def bare_aiohttp(stage: Stage, requests: int, resources: int, log=print) -> dict:
    """The faster of two bare aiohttp loops, on asyncio's loop and on uvloop: its requests per
    second, and the CPU a request cost its process (``client_cpu_us``) and the API server."""
    log(f"  bare aiohttp loops: {requests:,} detail calls at concurrency {stage.concurrency}, asyncio and uvloop ...")
    stage.server.configure(resources=resources, latency_ms=0, latency_jitter_ms=0, rate_limit=0, day=1)
    paths = [f"/items/{resource_id(n % resources)}/details" for n in range(requests)]
    runs = []
    for loop in ("asyncio", "uvloop"):
        split, cpu, started = CpuSplit(stage.server.process.pid), own_cpu(), time.perf_counter()
        event_loop.run(bare_aiohttp_loop(stage.server.url, paths, stage.concurrency), loop)
        wall, used = time.perf_counter() - started, own_cpu() - cpu
        runs.append({"per_s": requests / wall, "client_cpu_us": used / requests * 1e6, **split.done(requests)})
    return max(runs, key=lambda r: r["per_s"])
