"""Daily batched sync of a rate-limited, per-request-billed HTTP API into a warehouse, on Dagster."""
