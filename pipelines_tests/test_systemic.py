"""The systemic failure guard: the same failure on every resource is one fault of the API. Pure."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipelines.core.errors import ApiFailure, ErrorClass, SourceError
from pipelines.core.systemic import GuardPolicy, SystemicGuard, likely_settings


def err(cls=ErrorClass.GONE, message="HTTP 404", status=404, kind="probe", url="http://api/items/x"):
    return SourceError(cls, message, status=status, kind=kind, url=url)


def test_the_same_failure_over_a_window_trips_naming_the_setting():
    guard = SystemicGuard(GuardPolicy(ratio=0.9, window=50))
    for _ in range(44):
        guard.observe("probe", err())
    for _ in range(5):
        guard.observe("probe", None)  # 44 of 49: the window is not full yet
    with pytest.raises(ApiFailure) as info:
        guard.observe("probe", err())  # 45 of the last 50
    assert info.value.kind == "systemic_failure" and info.value.settings == ("probe.path", "client.base_url")
    assert "45 of the last 50 probe calls failed the same way" in str(info.value)


def test_failures_that_differ_per_resource_only_in_their_ids_are_the_same_failure():
    guard = SystemicGuard(GuardPolicy(window=10))
    with pytest.raises(ApiFailure):
        for i in range(10):
            guard.observe("detail", err(ErrorClass.POISON, f"record id 'r{i}' is not 'x{i}'", 200, "detail"))


@given(st.lists(st.sampled_from(["ok", "poison", "gone", "transient", "permanent"]), min_size=1, max_size=300))
def test_a_minority_of_failures_or_transient_ones_never_trip(outcomes):
    """Varied outcomes with no one failure at 90%, and any number of transient errors (the
    breaker's business), never trip."""
    classes = {"poison": ErrorClass.POISON, "gone": ErrorClass.GONE, "permanent": ErrorClass.PERMANENT}
    failures = [o for o in outcomes if o in classes]
    top = max((failures.count(c) for c in classes), default=0)
    guard = SystemicGuard(GuardPolicy(ratio=0.9, window=50, min_batch=10))
    tripped = False
    try:
        for o in outcomes:
            guard.observe(
                "probe", err(classes[o]) if o in classes else err(ErrorClass.TRANSIENT) if o == "transient" else None
            )
    except ApiFailure:
        tripped = True
    if top < 45:  # fewer than 45 of one failure in all: no window of 50 can hold 90% of it
        assert not tripped


@given(
    st.lists(
        st.tuples(st.sampled_from(["ok", "poison", "gone", "transient"]), st.sampled_from([1, 1, 1, 3, 100])),
        min_size=1,
        max_size=200,
    )
)
@example([("poison", 1)] * 9 + [("ok", 1)])  # the window fills with a success, already 90% failed
@example([("gone", 1)] * 5 + [("ok", 100)] + [("gone", 1)] * 8)  # a bulk probe's weight moves the window
def test_the_moving_counts_trip_exactly_where_the_whole_window_recounted_would(outcomes):
    """The guard keeps its window's counts as it moves; a reference recounts the last ``window``
    signatures after every call (what the guard did before) and trips on the same call."""
    classes = {"poison": ErrorClass.POISON, "gone": ErrorClass.GONE, "transient": ErrorClass.TRANSIENT}
    window, ratio = 10, 0.8
    guard = SystemicGuard(GuardPolicy(ratio=ratio, window=window))
    seen: list[str | None] = []
    expected = actual = None
    for i, (outcome, weight) in enumerate(outcomes):
        signature = outcome if outcome in ("poison", "gone") else None
        seen += [signature] * min(weight, window)
        last = seen[-window:]
        if expected is None and len(last) == window:
            top = max((last.count(s) for s in ("poison", "gone")), default=0)
            if top >= ratio * window:
                expected = i
        try:
            guard.observe("probe", err(classes[outcome]) if outcome in classes else None, weight=weight)
        except ApiFailure:
            actual = i
            break
    assert actual == expected


def test_a_batch_is_judged_at_its_end_when_it_is_smaller_than_the_window():
    guard = SystemicGuard(GuardPolicy(ratio=0.9, window=50, min_batch=10))
    small = [("probe", err()) for _ in range(9)]
    guard.judge_batch(small)  # 9 calls: too few to judge
    with pytest.raises(ApiFailure):
        guard.judge_batch([*small, ("probe", err())])
    guard.judge_batch([("probe", err())] * 8 + [("probe", None)] * 2)  # 80%: resources, not the API


def test_a_bulk_answer_weighs_for_every_sub_job_it_answers():
    guard = SystemicGuard(GuardPolicy(window=50))
    bulk = err(ErrorClass.PERMANENT, "HTTP 400", 400, "bulk_probe")
    with pytest.raises(ApiFailure) as info:
        guard.observe("bulk_probe", bulk, weight=100)  # one unusable chunk: a hundred sub-jobs
    assert info.value.settings[0] == "bulk_probe.path"


def test_ratio_zero_turns_the_guard_off():
    guard = SystemicGuard(GuardPolicy(ratio=0.0))
    for _ in range(500):
        guard.observe("probe", err())
    guard.judge_batch([("probe", err())] * 100)


@pytest.mark.parametrize(
    ("kind", "error", "first"),
    [
        (
            "probe",
            err(ErrorClass.POISON, "record lacks fingerprint field(s): versoin", 200),
            "fingerprint",
        ),
        ("probe", err(ErrorClass.POISON, "record lacks field(s): versoin", 200), "probe.fields"),
        ("detail", err(ErrorClass.GONE, "HTTP 404", 404, "detail"), "detail.path"),
        ("probe", err(ErrorClass.PERMANENT, "HTTP 400", 400), "probe.fields"),
        ("probe", err(ErrorClass.POISON, "body larger than 8 bytes", 200), "client.max_response_bytes"),
    ],
)
def test_likely_settings(kind, error, first):
    assert likely_settings(kind, error)[0] == first


def test_a_bulk_probes_fault_names_the_bulk_probes_keys_never_a_variable():
    keys = likely_settings("bulk_probe", err(ErrorClass.PERMANENT, "HTTP 400", 400, "bulk_probe"))
    assert "bulk_probe.separator" in keys and not any(k.startswith("SOURCE_") for k in keys)
