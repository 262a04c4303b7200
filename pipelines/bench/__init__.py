"""``make bench``: the daily sync measured against the naive pipeline (``python -m pipelines.bench``)."""
