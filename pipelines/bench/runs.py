"""Running measured processes (a pipeline day, the naive day) against a loopback sample API, and
reading what the server saw: billable calls per endpoint, 429s, and the request rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines.sample_api.process import SampleServer

START = "2026-01-01"  # simulated day 1


@dataclass
class Stage:
    """The API server, the Dagster instance's home and the knobs every measured run shares."""

    server: SampleServer
    dagster_home: Path
    rate: float  # the API's true rate R (requests/s); 0: unlimited
    concurrency: int = 16

    def env(self, warehouse_url: str, **settings: object) -> dict[str, str]:
        env = {
            **os.environ,
            "SOURCE_API_URL": self.server.url,
            "WAREHOUSE_URL": warehouse_url,
            "DAGSTER_HOME": str(self.dagster_home),
            "PIPELINE_START_DATE": START,
            "SOURCE_MAX_CONCURRENCY": str(self.concurrency),
            "SOURCE_RATE_LIMIT": str(self.rate),
        }
        env.update({name.upper(): str(value) for name, value in settings.items()})
        return env


def server_rate(timeline: list[list[int]]) -> dict[str, float]:
    """Requests per second the server received: mean over its busy span, and the busiest 5 s."""
    if not timeline:
        return {"server_rate_mean": 0.0, "server_rate_peak5": 0.0}
    per_second = {second: requests for second, requests, _ in timeline}
    first, last = timeline[0][0], timeline[-1][0]
    span = last - first + 1
    windows = [sum(per_second.get(s, 0) for s in range(t, t + 5)) / 5 for t in range(first, max(first + 1, last - 3))]
    return {"server_rate_mean": sum(per_second.values()) / span, "server_rate_peak5": max(windows)}


def measure(
    stage: Stage, sim_day: int, module: str, partition: str, env: dict[str, str], cwd: Path | None = None
) -> dict:
    """Run ``python -m module partition`` against a server set to ``sim_day``; its figures and the
    server's. From ``cwd`` (a baseline's worktree) the module is that checkout's."""
    (figures,) = measure_at_once(stage, sim_day, module, [partition], [env], cwd)
    return {**figures, **served(stage.server)}


def measure_at_once(
    stage: Stage, sim_day: int, module: str, partitions: list[str], envs: list[dict], cwd: Path | None = None
) -> list[dict]:
    """Start one process per partition at the same moment (a backfill); the figures of each."""
    stage.server.configure(day=sim_day)
    stage.server.reset()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", module, partition],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for partition, env in zip(partitions, envs, strict=True)
    ]
    results = []
    for partition, child in zip(partitions, children, strict=True):
        out, err = child.communicate(timeout=4 * 3600)
        if child.returncode != 0:
            raise RuntimeError(f"{module} {partition} failed:\n{err[-4000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def served(server: SampleServer) -> dict:
    stats = server.stats()
    sync = sum(stats.get(k, 0) for k in ("probe", "detail", "bulk_probe"))
    return {
        "server_sync_calls": sync,
        "server_listing_calls": stats.get("listing", 0),
        "server_calls": stats["billable"],
        "server_throttled": stats.get("throttled", 0),
        "server_bytes_sent": stats.get("bytes_sent", 0),
        **server_rate(server.timeline()),
        "server_peak_1s": server.peak_1s(),  # the busiest one-second window, sliding
    }
