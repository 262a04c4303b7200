"""Jobs of the sync."""

from dagster import AssetSelection, define_asset_job

daily_sync_job = define_asset_job(
    "daily_sync_job",
    selection=AssetSelection.groups("sync"),
    description="One day: refresh the watchlist, build the job set, sync it in batches.",
)
