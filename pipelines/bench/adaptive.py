"""Adaptive concurrency (target 3): the pipeline not told the API's rate, and the API slowing down.

* A day's sync with rate.requests_per_second at twice the API's true rate, and with none at all: the
  server counts the 429s and what it accepted per second.
* A client under steady load while the API's latency triples for a while, then recovers: the
  concurrency limit is sampled every quarter second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure
from pipelines.core.errors import SourceError
from pipelines.sample_api.world import resource_id
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines.source.declaration import declare


def accepted_throughput(timeline: list[list[int]]) -> float:
    """Requests the server accepted (not 429) per second, over the seconds it was busy."""
    busy = [row for row in timeline if row[1] > 0]
    return sum(req - throttled for _, req, throttled in busy) / max(1, len(busy))


def unknown_rate(stage: Stage, log=print) -> list[dict]:
    rows = []
    for label, ceiling in (("2R", 2 * stage.rate), ("none", 0)):
        with postgres_database("bench_wh") as warehouse:
            log(f"  adaptive, rate.requests_per_second={ceiling:g} ({label}) ...")
            env = stage.env(warehouse, {"rate.requests_per_second": ceiling})
            figures = measure(stage, 1, "pipelines.bench.day", "2026-01-01", env)
            timeline = stage.server.timeline()
            rows.append(
                {
                    "configured": label,
                    "calls": figures["server_calls"],
                    "throttled": figures["server_throttled"],
                    "throttled_share": figures["server_throttled"] / max(1, figures["server_calls"]),
                    "accepted_per_s": accepted_throughput(timeline),
                    "throughput_vs_rate": accepted_throughput(timeline) / stage.rate,
                    "run_wall_s": figures["run_wall_s"],
                    "success": figures["success"],
                }
            )
    return rows


async def _latency_episode(stage: Stage, base_ms: float, phases: tuple[float, float, float]) -> list[dict]:
    before, during, after = phases
    source = declare(
        stage.server.url, {"rate.max_concurrency": stage.concurrency, "rate.requests_per_second": stage.rate}
    )
    settings = ClientSettings(stage.server.url, source)
    samples: list[dict] = []
    stop = asyncio.Event()
    async with SourceApiClient(settings) as client:

        async def worker(offset: int) -> None:
            n = offset
            while not stop.is_set():
                n += stage.concurrency * 2
                with contextlib.suppress(SourceError):  # a failed probe is not what is measured here
                    await client.probe(resource_id(n % 1000), ["id", "version"])

        workers = [asyncio.create_task(worker(i)) for i in range(stage.concurrency * 2)]
        started = time.monotonic()
        schedule = [(before, 3 * base_ms), (before + during, base_ms)]
        while (elapsed := time.monotonic() - started) < before + during + after:
            if schedule and elapsed >= schedule[0][0]:
                await asyncio.to_thread(stage.server.configure, latency_ms=schedule.pop(0)[1])
            limits = client.limits()
            samples.append({"t": round(elapsed, 2), "concurrency": limits["concurrency"], "rate": limits["rate"]})
            await asyncio.sleep(0.25)
        stop.set()
        await asyncio.gather(*workers)
    return samples


def latency_episode(stage: Stage, base_ms: float, phases=(10.0, 15.0, 12.0), log=print) -> dict:
    log(f"  latency {base_ms:g} ms -> {3 * base_ms:g} ms for {phases[1]:g}s -> back ...")
    stage.server.configure(day=1, latency_ms=base_ms)
    samples = asyncio.run(_latency_episode(stage, base_ms, phases))
    before, during, _ = phases

    def phase(lo: float, hi: float) -> list[int]:
        return [s["concurrency"] for s in samples if lo <= s["t"] < hi]

    steady = phase(before - 4, before)
    slow = phase(before, before + during)
    end = phase(sum(phases) - 3, sum(phases))
    return {
        "limit_before": sum(steady) / max(1, len(steady)),
        "limit_min_during": min(slow) if slow else 0,
        "limit_at_end": sum(end) / max(1, len(end)),
        "samples": samples,
    }
