"""``make bench`` (``python -m pipelines.bench``): the daily sync against the naive pipeline, with
the sample API as a real server in its own process on a loopback port, the warehouse and the
Dagster instance on PostgreSQL. Prints every section's table and the targets, and writes the same
as JSON under bench-results/. ``--n 3000`` for a quick run; ``--sections days,warehouse`` for some.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pipelines.bench import adaptive, baseline, ceiling, days, demo, runaway, scale, scaleout, shared, warehouse
from pipelines.bench.postgres import dagster_home_on_postgres, postgres_database
from pipelines.bench.report import render, targets
from pipelines.bench.runs import Stage
from pipelines.sample_api.process import SampleServer

SECTIONS = ("days", "runaway", "adaptive", "shared", "warehouse", "ceiling", "scale", "scaleout", "demo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipelines.bench", description=__doc__)
    p.add_argument("--n", type=int, default=30_000, help="sub-jobs of the standard day")
    p.add_argument("--rate", type=float, default=200.0, help="the API's rate limit R (requests/s)")
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--jitter-ms", type=float, default=10.0)
    p.add_argument("--change-rate", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=16, help="the concurrency cap of both pipelines")
    p.add_argument("--adaptive-n", type=int, default=4_000, help="sub-jobs of the adaptive runs")
    p.add_argument("--shared-n", type=int, default=2_000, help="sub-jobs of each of the three partitions")
    p.add_argument("--scale-n", type=int, default=None, help="sub-jobs of the big day (default 10 x --n)")
    p.add_argument("--ceiling-n", type=int, default=20_000, help="detail calls of each run of the client's ceiling")
    p.add_argument("--runaway-n", type=int, default=3_000, help="ids of each runaway mode's day")
    p.add_argument("--strategies", default=",".join(days.STRATEGIES))
    p.add_argument("--no-naive", action="store_true", help="the standard day without the naive pipeline's")
    p.add_argument(
        "--profile",
        choices=["items", "shop"],
        default="items",
        help="the standard day's API shape: the sample contract, or the second profile (examples/sample_shop.yaml)",
    )
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help=f"the scale section without the 10x day at {baseline.BASELINE} (before issue 14)",
    )
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="the shared rate limiter")
    p.add_argument("--broker-url", default="redis://127.0.0.1:6379/14", help="Celery's broker (emptied first)")
    p.add_argument("--worker-concurrency", type=int, default=2, help="processes per Celery worker node")
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    args = p.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(args: argparse.Namespace) -> dict:
    sections = args.sections.split(",")
    results: dict = {"settings": {k: str(v) for k, v in vars(args).items()}, "started": datetime.now(UTC).isoformat()}
    server = SampleServer(
        resources=args.n,
        change_rate=args.change_rate,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.jitter_ms,
        rate_limit=args.rate,
    )
    try:
        with postgres_database("bench_instance") as instance_url:
            home = dagster_home_on_postgres(Path(tempfile.mkdtemp(prefix="bench-home-")), instance_url)
            stage = Stage(server, home, rate=args.rate, concurrency=args.concurrency)
            if "days" in sections:
                log(f"the standard day: {args.n:,} sub-jobs, R = {args.rate:g}/s")
                results["days"] = days.standard_days(
                    stage, args.strategies.split(","), naive=not args.no_naive, log=log, profile_name=args.profile
                )
            if "runaway" in sections:
                log(f"runaways: a day against each, {args.runaway_n:,} ids, calls against the day's ceiling")
                results["runaway"] = runaway.runaway_days(args.runaway_n, log=log)
            if "adaptive" in sections:
                log("adaptive concurrency")
                server.configure(resources=args.adaptive_n)
                results["adaptive"] = adaptive.unknown_rate(stage, log=log)
                results["latency"] = adaptive.latency_episode(stage, args.latency_ms, log=log)
                server.configure(latency_ms=args.latency_ms)
            if "shared" in sections:
                log("one rate for everyone")
                server.configure(resources=args.shared_n)
                results["shared"] = shared.three_at_once(stage, args.redis_url, log=log)
            if "warehouse" in sections:
                log("warehouse upserts")
                results["warehouse"] = warehouse.upsert_rates(log=log)
            if "ceiling" in sections:
                log("the client's ceiling against bare loops (no latency, no rate limit)")
                unlimited = Stage(server, home, rate=0, concurrency=args.concurrency)
                results["ceiling"] = ceiling.client_ceiling(unlimited, args.ceiling_n, args.n, log=log)
            if "scale" in sections:
                log("scale and the client's ceiling (no latency, no rate limit)")
                unlimited = Stage(server, home, rate=0, concurrency=args.concurrency)
                big = args.scale_n or 10 * args.n
                # the bare loop before and after the day it is compared with: the machine is shared
                bare = [scale.bare_aiohttp(unlimited, 2 * args.n, args.n, log=log)]
                results["scale"] = [scale.one_day(unlimited, args.n, log=log)]
                bare.append(scale.bare_aiohttp(unlimited, 2 * args.n, args.n, log=log))
                results["bare_aiohttp_runs"] = bare
                results["bare_aiohttp_per_s"] = sum(r["per_s"] for r in bare) / len(bare)
                results["cores"] = len(os.sched_getaffinity(0))  # the cores the runs above shared
                results["scale"].append(scale.one_day(unlimited, big, log=log))
                if not args.no_baseline:
                    with baseline.worktree() as tree:
                        if tree is None:
                            log("  not a git checkout: the 10x day's baseline cannot be read, not measured")
                        else:
                            results["scale"].append(
                                scale.one_day(unlimited, big, log=log, version=baseline.BASELINE, cwd=tree)
                            )
            if "scaleout" in sections:
                log("scale-out: two Celery worker nodes")
                server.configure(
                    resources=args.n, latency_ms=args.latency_ms, latency_jitter_ms=args.jitter_ms, rate_limit=args.rate
                )
                results["scaleout"] = scaleout.two_workers(
                    stage, args.redis_url, args.broker_url, args.worker_concurrency, log=log
                )
                log("scale-out beyond one process: two Celery worker nodes, no rate limit, no latency")
                results["scaleout_unlimited"] = scaleout.beyond_one_process(
                    stage, args.redis_url, args.broker_url, args.n, args.worker_concurrency, log=log
                )
    finally:
        server.stop()
    if "demo" in sections:  # no server of ours: the demo embeds its API
        log(f"make demo, at {demo.BASELINE} (before issue 14) and at this commit")
        results["demo"] = demo.demo_against_baseline(log=log)
    results["finished"] = datetime.now(UTC).isoformat()
    results["targets"] = targets(results, args.rate)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    print()
    print(render(results))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
