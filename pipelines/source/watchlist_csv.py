"""Where the watchlist comes from: the API listing or a CSV file. No Dagster.

A CSV's ids are read exactly as written: every cell is text (no ``NA``, ``null``, ``None``,
``nan`` or ``#N/A`` turned into a missing value, no number parsing, no stripping), the file must
be UTF-8, and a file with no id column or no rows is an error naming WATCHLIST_CSV.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

ID_COLUMNS = ("resource_id", "id")


class WatchlistCsvError(ValueError):
    """The watchlist CSV cannot be read as ids; the message names WATCHLIST_CSV and the file."""


def csv_ids(path: str, chunk_rows: int = 50_000, setting: str = "WATCHLIST_CSV") -> Iterator[list[str]]:
    """Ids from the ``resource_id`` (or ``id``) column of a CSV, a chunk at a time; errors name
    ``setting`` (the variable, or the declaration key, that named the file)."""
    if not Path(path).is_file():
        raise WatchlistCsvError(f"{setting}: no such file: {path}")
    read = {
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "encoding": "utf-8-sig",
        "encoding_errors": "strict",
    }
    try:
        header = pd.read_csv(path, nrows=0, **read).columns
    except pd.errors.EmptyDataError:
        raise WatchlistCsvError(f"{setting} {path}: the file is empty (it needs a resource_id column)") from None
    except UnicodeDecodeError as exc:
        raise WatchlistCsvError(f"{setting} {path}: not UTF-8 ({exc.reason})") from None
    except pd.errors.ParserError as exc:  # an unterminated quote is found here, reading to its end
        raise WatchlistCsvError(f"{setting} {path}: not a readable CSV: {_reason(exc)}") from None
    column = next((c for c in ID_COLUMNS if c in header), None)
    if column is None:
        raise WatchlistCsvError(f"{setting} {path}: needs a resource_id or id column, has {list(header)}")
    rows = 0
    try:
        for chunk in pd.read_csv(path, usecols=[column], chunksize=chunk_rows, **read):
            rows += len(chunk)
            yield chunk[column].tolist()
    except UnicodeDecodeError as exc:
        raise WatchlistCsvError(f"{setting} {path}: not UTF-8 ({exc.reason})") from None
    except pd.errors.ParserError as exc:
        raise WatchlistCsvError(f"{setting} {path}: not a readable CSV: {_reason(exc)}") from None
    if not rows:
        raise WatchlistCsvError(f"{setting} {path}: the {column} column has no rows")


def check_csv(path: str, setting: str = "WATCHLIST_CSV") -> int:
    """Read the whole CSV now (a setting's check at load): its number of ids, or the error."""
    return sum(len(ids) for ids in csv_ids(path, setting=setting))


def _reason(exc: Exception) -> str:
    """pandas' parser error without its C-level preamble: "EOF inside string starting at row 1"."""
    return str(exc).removeprefix("Error tokenizing data. C error: ").strip()
