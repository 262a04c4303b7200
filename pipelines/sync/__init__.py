"""The Dagster layer of the daily sync: partitions, resources, assets, ops and jobs."""
