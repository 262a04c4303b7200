"""The standard day (targets 1, 2 and 5): naive and the pipeline's probe strategies, day 1 then
day 2, on one API server and one Dagster instance, each pipeline on a warehouse of its own. The
listing strategies run from a source declaration (their listing carries the fingerprint), and
their minimum counts the listing's pages, which replace the probes."""

from __future__ import annotations

import math

import yaml

from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure
from pipelines.source.declaration import declare

STRATEGIES = ("projected", "conditional", "bulk", "listing", "changed_since")
LISTING = frozenset({"listing", "changed_since"})
PAGE_SIZE = 500  # the sample declaration's listing page


def minimum_calls(strategy: str, sub_jobs: int, changed: int, day: int = 1, bulk_size: int = 100) -> int:
    """The fewest calls the API's shape allows: a probe per id (or per 100 ids) and a detail per
    change; for the listing strategies, the listing's pages (every item's, or from day 2 on with
    changed_since only the changed items') and a detail per change."""
    if strategy == "naive":
        return 2 * sub_jobs
    if strategy in LISTING:
        listed = changed if strategy == "changed_since" and day > 1 else sub_jobs
        return max(1, math.ceil(listed / PAGE_SIZE)) + changed
    probes = math.ceil(sub_jobs / bulk_size) if strategy == "bulk" else sub_jobs
    return probes + changed


def declared_env(stage: Stage, warehouse: str, strategy: str) -> dict[str, str]:
    """The environment of a listing strategy's run: the sample contract declared at the stage's
    server, with the listing carrying the fingerprint (and its change filter)."""
    changes: dict[str, object] = {
        "probe.strategy": strategy,
        "listing.fields": ["id", "version", "updated_at"],
        "rate.requests_per_second": stage.rate,
        "rate.max_concurrency": stage.concurrency,
        "rate.min_concurrency": min(2, stage.concurrency),
        "detail.required": ["id", "version"],
    }
    if strategy == "changed_since":
        changes["listing.changed_since"] = {"param": "updated_since", "cursor_path": "updated_at"}
    source = declare(stage.server.url, changes, name="bench")
    path = stage.dagster_home.parent / f"source-{strategy}.yaml"
    path.write_text(yaml.safe_dump(source.model_dump(mode="json"), sort_keys=False))
    env = stage.env(warehouse, source_declaration=path)
    for name in ("SOURCE_API_URL", "SOURCE_MAX_CONCURRENCY", "SOURCE_RATE_LIMIT"):  # said by the declaration
        env.pop(name)
    return env


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
                    if pipeline in LISTING:
                        env = declared_env(stage, warehouse, pipeline)
                    else:
                        env = stage.env(warehouse, source_probe_strategy=pipeline)
                    figures = measure(stage, day, "pipelines.bench.day", partition, env)
                rows.append(describe(stage, pipeline, day, figures))
                log(f"    {rows[-1]['server_calls']:,} calls in {rows[-1]['run_wall_s']:.1f}s")
    changed = {r["day"]: r["changed"] for r in rows if r["pipeline"] != "naive"}
    for r in rows:  # naive does not detect changes: take the day's from the pipeline
        if r["pipeline"] == "naive" and r["day"] in changed:
            r["changed"] = changed[r["day"]]
        r["minimum_calls"] = minimum_calls(r["pipeline"], r["sub_jobs"], r["changed"], r["day"])
        counted = r["server_sync_calls"] + (r["server_listing_calls"] if r["pipeline"] in LISTING else 0)
        r["calls_vs_minimum"] = counted / max(1, r["minimum_calls"])
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
