"""Running measured processes (a pipeline day, the naive day) against a loopback sample API, and
reading what the server saw: billable calls per endpoint, 429s, and the request rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.retired_variables import RETIRED
from pipelines.sample_api.process import SampleServer
from pipelines.source.declaration import SourceDeclaration, declare

START = "2026-01-01"  # simulated day 1


@dataclass
class Stage:
    """The API server, the Dagster instance's home and the knobs every measured run shares."""

    server: SampleServer
    dagster_home: Path
    rate: float  # the API's true rate R (requests/s); 0: unlimited
    concurrency: int = 16

    def env(
        self, warehouse_url: str, changes: Mapping[str, object] | None = None, **settings: object
    ) -> dict[str, str]:
        """A measured run of this checkout: the API of docs/source-api.md declared at the server
        with the stage's rate and concurrency and ``changes`` by dotted key; ``settings`` are the
        deployment's variables by field name (``sync_executor="celery"``)."""
        source = declare(
            self.server.url,
            {
                "rate.requests_per_second": self.rate,
                "rate.max_concurrency": self.concurrency,
                "rate.min_concurrency": min(2, self.concurrency),
                "detail.required": ["id", "version"],
                **(changes or {}),
            },
            name="bench",
        )
        return self.declared(warehouse_url, source, **settings)

    def declared(self, warehouse_url: str, source: SourceDeclaration, **settings: object) -> dict[str, str]:
        """A measured run of this checkout syncing ``source`` (written beside the instance)."""
        path = self.dagster_home.parent / f"source-{uuid.uuid4().hex[:12]}.yaml"
        data = source.model_dump(mode="json")
        data["operations"]["start_date"] = START  # the server's day 1
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        env = {
            **{k: v for k, v in os.environ.items() if k not in RETIRED},
            "SOURCE_DECLARATION": str(path),
            "WAREHOUSE_URL": warehouse_url,
            "DAGSTER_HOME": str(self.dagster_home),
        }
        for variable in source.client.auth.variables():  # the sample server checks no credential here
            env.setdefault(variable, "bench")
        env.update({name.upper(): str(value) for name, value in settings.items()})
        return env

    def baseline_env(self, warehouse_url: str, **flat: object) -> dict[str, str]:
        """A measured run of the baseline's checkout, which knew only the flat variables."""
        env = {
            **os.environ,
            "SOURCE_API_URL": self.server.url,
            "WAREHOUSE_URL": warehouse_url,
            "DAGSTER_HOME": str(self.dagster_home),
            "PIPELINE_START_DATE": START,
            "SOURCE_MAX_CONCURRENCY": str(self.concurrency),
            "SOURCE_RATE_LIMIT": str(self.rate),
        }
        env.pop("SOURCE_DECLARATION", None)
        env.update({name.upper(): str(value) for name, value in flat.items()})
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
