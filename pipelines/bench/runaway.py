"""Runaways (issue 25): one day against each way an API or an operator can make spend run away,
the calls counted at the server beside the day's ceiling, and how long the day took to stop.

Each mode is a fresh warehouse (SQLite) and an ephemeral Dagster instance, the hostile test API
on a loopback port (``pipelines_tests/hostile_api.py``: a checkout's benchmark), ``n`` ids and
a first day synced normally, then the day under test. The bound each mode must stay under is
the day's spending ceiling, derived from the tracked ids as a deployment's would be (or the
declared one where the mode declares it).
"""

from __future__ import annotations

import importlib
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml
from dagster import instance_for_test, materialize

from pipelines.source.declaration import declare
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource, _store, declared_source
from pipelines.sync.synced_resources import synced_resources

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
D1, D2 = "2026-01-01", "2026-01-02"


def _modes(n: int) -> dict[str, tuple[dict, Callable, str]]:
    """Each mode: the declaration's changes, what the API (or the run) does on day 2, and the day
    2 partition's run tags' opt-in ("" none)."""

    def cursor(kind):
        return lambda api: setattr(api.mode, "advancing_cursor", kind)

    def retry_after(value):
        return lambda api: setattr(api.mode, "retry_after", value)

    def new_ids(api):
        api.mode.new_ids_for_ever, api.mode.total_header = True, True

    def failing(api):
        api.mode.status = 503

    return {
        "cursor advancing over empty pages": ({}, cursor("empty"), ""),
        "cursor advancing over the same page": ({}, cursor("same"), ""),
        "new ids for ever past a stated total": ({"listing.total_header": "X-Total-Count"}, new_ids, ""),
        "Retry-After: 0 on every call": ({"errors.min_throttle_wait": 0.1}, retry_after("0"), ""),
        "Retry-After: 86400 on every call": ({}, retry_after("86400"), ""),
        "503 on every call": ({"client.breaker.hold": 5, "client.breaker.cooldown": 2}, failing, ""),
        "a day needing more than a declared ceiling": ({"spend.max_calls": n // 2}, lambda api: None, "force"),
        "a past day, not opted in": ({}, lambda api: None, "past"),
    }


def runaway_days(n: int, log: Callable[[str], None]) -> list[dict]:
    # the checkout's hostile test API (not the product's: not type-checked with it)
    HostileApi = importlib.import_module("pipelines_tests.hostile_api").HostileApi  # noqa: N806

    rows = []
    for mode, (changes, misbehave, special) in _modes(n).items():
        api = HostileApi()
        api.mode.listing = [f"x{i:06d}" for i in range(n)]
        tmp = Path(tempfile.mkdtemp(prefix="bench-runaway-"))
        base = {"bulk_probe": None, "conditional": None, "listing.page_size": 500}
        declared = declare(api.url, {**base, **changes}, name="runaway")
        path = tmp / "source.yaml"
        path.write_text(yaml.safe_dump(declared.model_dump(mode="json")))
        warehouse = WarehouseResource(url=f"sqlite:///{tmp / 'warehouse.db'}")
        res = {"source_api": declared_source(path), "warehouse": warehouse}
        store = warehouse.store()
        try:
            with instance_for_test() as instance:
                first = "2026-01-03" if special == "past" else D1  # the past day comes after a newer one
                if special != "force":
                    materialize(ASSETS, partition_key=first, resources=res, instance=instance, run_config=QUIET)
                api.mode.version = 2  # everything changed: day 2 needs a detail call per id
                misbehave(api)
                api.reset()
                day = D2 if special != "past" else D1
                started = time.monotonic()
                result = materialize(
                    ASSETS, partition_key=day, resources=res, instance=instance, run_config=QUIET, raise_on_error=False
                )
                seconds = time.monotonic() - started
            calls = len(api.targets())
            ceiling = declared.spend_policy().ceiling(store.spend.tracked_ids(date.fromisoformat(day)))
            reached = store.spend.ceiling_reached(date.fromisoformat(day))
            outcomes = store.reports.outcomes_of(date.fromisoformat(day))
        finally:
            api.close()
            _store.cache_clear()
        row = {
            "mode": mode,
            "ids": n,
            "server_calls": calls,
            "ceiling_calls": ceiling.calls,
            "within": calls <= ceiling.calls,
            "seconds_to_stop": round(seconds, 1),
            "run_success": result.success,
            "ceiling_reached": reached is not None,
            "deferred": sum(o == "retry" for o in outcomes.values()),
        }
        log(
            f"  {mode}: {calls:,} calls (ceiling {ceiling.calls:,}) in {seconds:.1f}s; "
            f"{row['deferred']:,} sub-jobs deferred{'; the ceiling bound' if reached else ''}"
        )
        rows.append(row)
    return rows
