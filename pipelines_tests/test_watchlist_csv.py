"""A CSV watchlist is read exactly as written, or refused with an error naming WATCHLIST_CSV."""

import pytest

from pipelines.source.watchlist_csv import WatchlistCsvError, csv_ids


def read(path) -> list[str]:
    return [rid for chunk in csv_ids(str(path), chunk_rows=3) for rid in chunk]


def test_ids_are_read_exactly_as_written(tmp_path):
    csv = tmp_path / "ids.csv"
    csv.write_text(
        'resource_id\nNA\nnull\nNone\nnan\n#N/A\n" spaced "\n"a,b"\n"multi\nline"\n007\n1e3\nTRUE\n', encoding="utf-8"
    )
    assert read(csv) == ["NA", "null", "None", "nan", "#N/A", " spaced ", "a,b", "multi\nline", "007", "1e3", "TRUE"]


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    csv = tmp_path / "excel.csv"
    csv.write_bytes("\ufeffresource_id\nr1\n".encode())
    assert read(csv) == ["r1"]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the file is empty"),
        (b"resource_id\n", "has no rows"),
        (b"name\nx\n", "needs a resource_id or id column"),
        (b"resource_id\nabc\n\xff\xfe\x00z\n", "not UTF-8"),
        ("resource_id\nr1\ncaf\u00e9\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_setting(tmp_path, content, said):
    csv = tmp_path / "ids.csv"
    csv.write_bytes(content)
    with pytest.raises(WatchlistCsvError, match=f"WATCHLIST_CSV {csv}.*{said}"):
        read(csv)


def test_a_missing_file_is_an_error_naming_the_setting(tmp_path):
    with pytest.raises(WatchlistCsvError, match="WATCHLIST_CSV: no such file"):
        read(tmp_path / "nope.csv")
