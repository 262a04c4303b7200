"""Everything one source makes in the code location, in its ``SourceScope`` (its name, and its
declaration's operations): the five daily assets, their checks, the daily job and its schedule,
the completion and failed-run sensors and the replay job."""

from __future__ import annotations

from dagster import Definitions

from pipelines.source.estimate import markdown
from pipelines.source.watchlist_csv import check_csv
from pipelines.sync.assets import upstream_assets
from pipelines.sync.checks import source_checks
from pipelines.sync.dead_letter import dead_letter_asset
from pipelines.sync.jobs import daily_job
from pipelines.sync.replay import replay_job
from pipelines.sync.resources import DeclaredSource
from pipelines.sync.schedules import daily_schedule
from pipelines.sync.scope import SourceScope
from pipelines.sync.sensors import source_sensors
from pipelines.sync.synced_resources import synced_resources_asset


def source_definitions(name: str | None, source_api: DeclaredSource) -> Definitions:
    """``name``: the source's (None: the one configured by environment, under the names such a
    deployment always had)."""
    declared = source_api.declaration()
    if (csv := source_api.watchlist_csv()) is not None:  # an unreadable watchlist stops the load, named
        check_csv(csv, setting=f"{source_api.declaration_file}: watchlist_csv")
    scope = SourceScope(name, declared.operations)
    scope.alerts().webhook_url()  # its webhook's URL is kept out of every log line from the load on
    watchlist, retry_queue, job_set = upstream_assets(scope)
    ids = declared.client.sample.resources if declared.client.sample else 10_000
    synced = synced_resources_asset(scope, job_set, estimate=markdown(declared, ids, 0.2))
    dead = dead_letter_asset(scope, synced)
    daily, replay = daily_job(scope), replay_job(scope)
    return Definitions(
        assets=[watchlist, retry_queue, job_set, synced, dead],
        asset_checks=source_checks(scope, synced, dead),
        jobs=[daily, replay],
        schedules=[daily_schedule(scope, daily)],
        # a named source alerts on its own runs; the unnamed one on every run, as it always has
        sensors=source_sensors(scope, [daily, replay] if scope.name else None),
        resources={scope.api_key: source_api},
    )
