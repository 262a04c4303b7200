import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.core.batching import batch_id, batch_size_for, chunked
from pipelines.core.log_lines import Coalesced

ids = st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), unique=True, max_size=600)
sizes = st.integers(min_value=1, max_value=150)


@given(st.lists(st.integers(), max_size=300), st.integers(min_value=1, max_value=40))
def test_chunked_keeps_order_and_bounds(items, size):
    chunks = list(chunked(items, size))
    assert [x for c in chunks for x in c] == items
    assert all(1 <= len(c) <= size for c in chunks)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="must be >= 1"):
        list(chunked([1], bad))


def test_batch_id_names_partition_and_number():
    assert batch_id("2026-11-21", 42) == "2026-11-21#00042"


def test_batches_of_a_bulk_source_are_whole_bulk_probes():
    assert batch_size_for(100, None) == 100  # no bulk probe: the setting
    assert batch_size_for(100, 100) == 100
    assert batch_size_for(100, 250) == 250  # one full probe per batch, not one per 100 ids
    assert batch_size_for(300, 250) == 250  # not 250 + 50 in two calls
    assert batch_size_for(600, 250) == 500
    assert batch_size_for(100, 40) == 80


def test_coalesced_lines_are_all_written_in_a_few_messages():
    now = [0.0]
    written: list[str] = []
    lines = Coalesced(written.append, every=5.0, clock=lambda: now[0])
    for n in range(12):
        now[0] = n
        lines.add(f"batch {n}")
    lines.flush()
    lines.flush()  # nothing held: nothing written
    assert written == [
        "\n".join(f"batch {n}" for n in range(6)),
        "\n".join(f"batch {n}" for n in range(6, 11)),
        "batch 11",
    ]
