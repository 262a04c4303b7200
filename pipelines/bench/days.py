"""The standard day (targets 1, 2 and 5): naive and the pipeline's three probe strategies, day 1
then day 2, on one API server and one Dagster instance, each pipeline on a warehouse of its own."""

from __future__ import annotations

import math

from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure

STRATEGIES = ("projected", "conditional", "bulk")


def minimum_calls(strategy: str, sub_jobs: int, changed: int, bulk_size: int = 100) -> int:
    """The fewest sync calls the API's shape allows: a probe per id (or per 100 ids), a detail per change."""
    if strategy == "naive":
        return 2 * sub_jobs
    probes = math.ceil(sub_jobs / bulk_size) if strategy == "bulk" else sub_jobs
    return probes + changed


def standard_days(stage: Stage, strategies=STRATEGIES, naive: bool = True, log=print) -> list[dict]:
    rows = []
    for pipeline in (["naive"] if naive else []) + list(strategies):
        with postgres_database("bench_wh") as warehouse:
            for day in (1, 2):
                partition = f"2026-01-0{day}"
                log(f"  {pipeline} day {day} ...")
                if pipeline == "naive":
                    figures = measure(stage, day, "pipelines.bench.naive", partition, stage.env(warehouse))
                else:
                    env = stage.env(warehouse, source_probe_strategy=pipeline)
                    figures = measure(stage, day, "pipelines.bench.day", partition, env)
                rows.append(describe(stage, pipeline, day, figures))
                log(f"    {rows[-1]['server_calls']:,} calls in {rows[-1]['run_wall_s']:.1f}s")
    changed = {r["day"]: r["changed"] for r in rows if r["pipeline"] != "naive"}
    for r in rows:  # naive does not detect changes: take the day's from the pipeline
        if r["pipeline"] == "naive" and r["day"] in changed:
            r["changed"] = changed[r["day"]]
        r["minimum_calls"] = minimum_calls(r["pipeline"], r["sub_jobs"], r["changed"])
        r["calls_vs_minimum"] = r["server_sync_calls"] / max(1, r["minimum_calls"])
    return rows


def describe(stage: Stage, pipeline: str, day: int, figures: dict) -> dict:
    bound = figures["server_calls"] / stage.rate if stage.rate else 0.0
    wall = figures["run_wall_s"]
    overhead = wall - figures.get("batch_busy_s", wall)  # naive has no batches: none
    return {
        "pipeline": pipeline,
        "day": day,
        "changed": figures.get("changed", figures["sub_jobs"] if day == 1 else 0),
        **figures,
        "rate_bound_s": bound,
        "wall_vs_bound": wall / bound if bound else 0.0,
        "throttled_share": figures["server_throttled"] / max(1, figures["server_calls"]),
        "overhead_s": overhead,
        "overhead_share": overhead / wall if wall else 0.0,
    }
