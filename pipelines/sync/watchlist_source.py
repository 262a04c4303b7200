"""Where the watchlist comes from: the API listing or a CSV file. No Dagster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

ID_COLUMNS = ("resource_id", "id")


def csv_ids(path: str, chunk_rows: int = 50_000) -> Iterator[list[str]]:
    """Ids from the ``resource_id`` (or ``id``) column of a CSV, a chunk at a time."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"WATCHLIST_CSV: no such file: {path}")
    header = pd.read_csv(path, nrows=0).columns
    column = next((c for c in ID_COLUMNS if c in header), None)
    if column is None:
        raise ValueError(f"WATCHLIST_CSV {path}: needs a resource_id or id column, has {list(header)}")
    for chunk in pd.read_csv(path, usecols=[column], dtype=str, chunksize=chunk_rows):
        yield [rid.strip() for rid in chunk[column].dropna() if rid.strip()]
