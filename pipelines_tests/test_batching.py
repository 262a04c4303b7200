from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.core.batching import assign_batches, batch_id, batch_size_for, chunked

ids = st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), unique=True, max_size=600)
sizes = st.integers(min_value=1, max_value=150)


@given(ids, sizes, st.integers(min_value=0, max_value=50))
def test_every_sub_job_is_in_exactly_one_batch(resource_ids, size, first):
    numbered = list(assign_batches(sorted(resource_ids), size, first))
    assert sorted(rid for rid, _ in numbered) == sorted(resource_ids)
    per_batch = Counter(batch for _, batch in numbered)
    assert all(count <= size for count in per_batch.values())
    # every batch but the last is full, numbers are consecutive from first
    numbers = sorted(per_batch)
    assert numbers == list(range(first, first + len(numbers)))
    assert all(per_batch[n] == size for n in numbers[:-1])


@given(ids, sizes)
def test_batches_are_stable_across_reruns(resource_ids, size):
    first = dict(assign_batches(sorted(resource_ids), size))
    again = dict(assign_batches(sorted(set(resource_ids)), size))
    assert first == again


@given(st.lists(st.integers(), max_size=300), st.integers(min_value=1, max_value=40))
def test_chunked_keeps_order_and_bounds(items, size):
    chunks = list(chunked(items, size))
    assert [x for c in chunks for x in c] == items
    assert all(1 <= len(c) <= size for c in chunks)


def test_assign_batches_streams_from_an_iterator():
    numbered = assign_batches(iter(f"r{i:03d}" for i in range(250)), 100)
    assert next(numbered) == ("r000", 0)
    assert list(numbered)[-1] == ("r249", 2)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="must be >= 1"):
        list(assign_batches(["a"], bad))
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
