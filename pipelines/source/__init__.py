"""The HTTP client of the source API: projection, conditional and bulk probes, retries, rate limit."""
