"""One rate for everyone (target 4): three partitions synced at once, as a backfill runs them,
first each with a budget of its own (the baseline), then sharing one budget through Redis."""

from __future__ import annotations

import uuid

from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure_at_once, served

PARTITIONS = ["2026-01-01", "2026-01-02", "2026-01-03"]


def three_at_once(stage: Stage, redis_url: str, log=print) -> list[dict]:
    rows = []
    for label, limiter in (("a budget per run", None), ("one budget in Redis", redis_url)):
        with postgres_database("bench_wh") as warehouse:
            log(f"  3 partitions at once, {label} ...")
            budget = {"rate.budget": f"bench:{uuid.uuid4().hex}"}
            env = stage.env(warehouse, budget, **({"source_rate_limiter_url": limiter} if limiter else {}))
            figures = measure_at_once(stage, 1, "pipelines.bench.day", PARTITIONS, [env] * len(PARTITIONS))
            server = served(stage.server)
            rows.append(
                {
                    "budget": label,
                    "runs_succeeded": sum(f["success"] for f in figures),
                    "failures": [failure for f in figures for failure in f["failures"]],
                    "calls": server["server_calls"],
                    "throttled": server["server_throttled"],
                    "throttled_share": server["server_throttled"] / max(1, server["server_calls"]),
                    "server_rate_mean": server["server_rate_mean"],
                    "server_rate_peak5": server["server_rate_peak5"],
                    "peak_vs_rate": server["server_rate_peak5"] / stage.rate,
                    "client_calls": sum(f["client_sync_calls"] + f["client_listing_calls"] for f in figures),
                }
            )
    return rows
