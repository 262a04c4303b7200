import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.core.fingerprint import Change, MissingFieldsError, decide, fingerprint
from pipelines.sample_api.world import project

values = st.one_of(st.integers(), st.text(max_size=10), st.dictionaries(st.text(max_size=3), st.integers(), max_size=4))


@given(st.dictionaries(st.sampled_from("abcdef"), values, min_size=2))
def test_fingerprint_ignores_fields_not_chosen_and_key_order(record):
    fields = sorted(record)[:2]
    reordered = dict(reversed(list(record.items())))
    extra = {**record, "zzz_unrelated": 1}
    assert fingerprint(record, fields) == fingerprint(reordered, fields) == fingerprint(extra, fields)


def test_fingerprint_changes_with_a_chosen_field():
    assert fingerprint({"version": 1}, ["version"]) != fingerprint({"version": 2}, ["version"])
    assert fingerprint({"version": 1, "name": "a"}, ["version", "name"]) != fingerprint(
        {"version": 1, "name": "b"}, ["version", "name"]
    )


def test_fingerprint_names_missing_fields():
    with pytest.raises(MissingFieldsError, match="version"):
        fingerprint({"id": "x", "version": None}, ["version"])


@pytest.mark.parametrize(
    ("stored", "current", "expected"),
    [(None, "a", Change.NEW), ("a", "a", Change.UNCHANGED), ("a", "b", Change.CHANGED)],
)
def test_change_decision(stored, current, expected):
    assert decide(stored, current) is expected


def test_projection_keeps_only_requested_fields():
    record = {"id": "x", "version": 3, "description": "long"}
    assert project(record, ["id", "version"]) == {"id": "x", "version": 3}
    assert project(record, None) == record
