"""Jobs of the sync."""

from dagster import AssetSelection, define_asset_job

from pipelines.sync.scope import DEFAULT_SCOPE, SourceScope


def daily_job(scope: SourceScope):
    return define_asset_job(
        scope.label("daily_sync_job"),
        selection=AssetSelection.groups(scope.group),
        description=f"One day{' of ' + scope.name if scope.name else ''}: refresh the watchlist, build the job set, "
        "sync it in batches.",
        tags={"source": scope.name} if scope.name else None,
    )


daily_sync_job = daily_job(DEFAULT_SCOPE)
