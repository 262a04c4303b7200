"""Pure logic of the sync (batching, fingerprints, change decisions, outcomes): no Dagster, no SQL."""
