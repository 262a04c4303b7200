"""The standard day (targets 1, 2 and 5): naive and the pipeline's probe strategies, day 1 then
day 2, on one API server and one Dagster instance, each pipeline on a warehouse of its own. The
listing strategies run from a source declaration (their listing carries the fingerprint), and
their minimum counts the listing's pages, which replace the probes.

``profile="shop"`` runs every strategy from the second profile's declaration
(examples/sample_shop.yaml: numeric ids, envelopes, ``Link`` pages, bulk probes of 250, a
list-shaped detail) against the same server; naive speaks only the first profile."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pipelines.bench.postgres import postgres_database
from pipelines.bench.runs import Stage, measure
from pipelines.source.declaration import SourceDeclaration, declare
from pipelines.source.declaration_file import load_declaration

STRATEGIES = ("projected", "conditional", "bulk", "listing", "changed_since", "embedded", "embedded_since")
LISTING = frozenset({"listing", "changed_since", "embedded", "embedded_since"})
# The listing strategies with the details carried by the listing (detail.embedded): no detail call.
EMBEDDED = {"embedded": "listing", "embedded_since": "changed_since"}
PAGE_SIZE = 500  # the sample declaration's listing page
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class Profile:
    """How one sample profile is declared: its base declaration and what the strategies change."""

    name: str
    base: SourceDeclaration | None  # None: the sample contract's defaults (docs/source-api.md)
    listing_fields: list[str]
    changed_since: dict[str, str]
    page_size: int = PAGE_SIZE
    bulk_size: int = 100
    embedded: dict | None = None  # how its listing carries the details


def profile(name: str) -> Profile:
    if name == "items":
        return Profile(
            "items",
            None,
            ["id", "version", "updated_at"],
            {"param": "updated_since", "cursor_path": "updated_at"},
            embedded={"carried_by": "listing", "params": {"embed": "details"}, "path": "details", "max_bytes": 16384},
        )
    shop = load_declaration(EXAMPLES / "sample_shop.yaml")
    assert shop.listing is not None and shop.bulk_probe is not None
    return Profile(
        "shop",
        shop,
        ["id", "updated_at"],
        {"param": "updated_at_min", "cursor_path": "updated_at"},
        page_size=shop.listing.page_size,
        bulk_size=shop.bulk_probe.max_ids,
        embedded={"carried_by": "listing", "params": {"include": "metafields"}, "path": "metafields"},
    )


def minimum_calls(
    strategy: str, sub_jobs: int, changed: int, day: int = 1, bulk_size: int = 100, page_size: int = PAGE_SIZE
) -> int:
    """The fewest calls the API's shape allows: a probe per id (or per 100 ids) and a detail per
    change; for the listing strategies, the listing's pages (every item's, or from day 2 on with
    changed_since only the changed items') and a detail per change, or none where the listing
    carries the details."""
    if strategy == "naive":
        return 2 * sub_jobs
    if strategy in LISTING:
        filtered = strategy in ("changed_since", "embedded_since") and day > 1
        listed = changed if filtered else sub_jobs
        return max(1, math.ceil(listed / page_size)) + (0 if strategy in EMBEDDED else changed)
    probes = math.ceil(sub_jobs / bulk_size) if strategy == "bulk" else sub_jobs
    return probes + changed


def declared_env(stage: Stage, warehouse: str, strategy: str, shape: Profile | None = None) -> dict[str, str]:
    """The environment of a run from a declaration: the profile declared at the stage's server,
    with the strategy (a listing strategy's listing carrying the fingerprint, and its filter)."""
    shape = shape or profile("items")
    changes: dict[str, object] = {
        "probe.strategy": EMBEDDED.get(strategy, strategy),
        "rate.requests_per_second": stage.rate,
        "rate.max_concurrency": stage.concurrency,
        "rate.min_concurrency": min(2, stage.concurrency),
    }
    if shape.base is None:
        changes["detail.required"] = ["id", "version"]
    if strategy in LISTING:
        changes["listing.fields"] = shape.listing_fields
    if strategy in ("changed_since", "embedded_since"):
        changes["listing.changed_since"] = shape.changed_since
    if strategy in EMBEDDED:
        changes["detail.embedded"] = shape.embedded
    source = declare(stage.server.url, changes, name="bench", base=shape.base)
    return stage.declared(warehouse, source)


def standard_days(
    stage: Stage, strategies=STRATEGIES, naive: bool = True, log=print, profile_name: str = "items"
) -> list[dict]:
    shape = profile(profile_name)
    naive = naive and shape.base is None  # the naive loop speaks the first profile only
    rows = []
    for pipeline in (["naive"] if naive else []) + list(strategies):
        with postgres_database("bench_wh") as warehouse:
            for day in (1, 2):
                partition = f"2026-01-0{day}"
                log(f"  {pipeline} day {day} ...")
                if pipeline == "naive":
                    figures = measure(stage, day, "pipelines.bench.naive", partition, stage.env(warehouse))
                else:
                    if pipeline in LISTING or shape.base is not None:
                        env = declared_env(stage, warehouse, pipeline, shape)
                    else:
                        env = stage.env(warehouse, {"probe.strategy": pipeline})
                    figures = measure(stage, day, "pipelines.bench.day", partition, env)
                rows.append(describe(stage, pipeline, day, figures))
                log(f"    {rows[-1]['server_calls']:,} calls in {rows[-1]['run_wall_s']:.1f}s")
    changed = {r["day"]: r["changed"] for r in rows if r["pipeline"] != "naive"}
    for r in rows:  # naive does not detect changes: take the day's from the pipeline
        if r["pipeline"] == "naive" and r["day"] in changed:
            r["changed"] = changed[r["day"]]
        r["profile"] = shape.name
        r["minimum_calls"] = minimum_calls(
            r["pipeline"], r["sub_jobs"], r["changed"], r["day"], shape.bulk_size, shape.page_size
        )
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
