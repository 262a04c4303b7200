"""Which error goes where, and how long tier 1 waits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tenacity import RetryCallState

from pipelines.core.outcomes import BatchResult, Member, Outcome, SubJobResult
from pipelines.core.tiers import route_failure, route_results
from pipelines.source.client import SourceApiClient
from pipelines_tests.helpers import client_settings


@pytest.mark.parametrize(
    ("error_class", "used", "outcome", "days_after"),
    [
        ("transient", 0, Outcome.RETRY, 1),  # tier 1 ran out: tier 2, day 1
        ("transient", 2, Outcome.RETRY, 3),  # last day of a 3-day budget
        ("transient", 3, Outcome.DEAD, 3),  # tier 2 exhausted
        ("circuit_open", 3, Outcome.RETRY, 3),  # held by the breaker: free, never dead
        ("poison", 0, Outcome.DEAD, 0),  # never retried
        ("permanent", 0, Outcome.DEAD, 0),
        ("gone", 0, Outcome.GONE, 0),
        ("throttled", 0, Outcome.RETRY, 1),  # throttled for too long counts as transient
        ("invalid_id", 0, Outcome.DEAD, 0),  # an id no URL or column can carry: never retried
    ],
)
def test_route_failure(error_class, used, outcome, days_after):
    route = route_failure(error_class, used, budget_days=3)
    assert route.outcome is outcome
    assert route.tier2_days_used == days_after


def test_a_zero_budget_dead_letters_transient_failures_at_once():
    assert route_failure("transient", 0, budget_days=0).outcome is Outcome.DEAD


def test_route_results_keeps_successes_and_routes_failures():
    raw = BatchResult(
        results=[
            SubJobResult("a", Outcome.CHANGED, "new"),
            SubJobResult("b", Outcome.FAILED, "HTTP 503", error_class="transient", http_status=503, attempts=4),
            SubJobResult("c", Outcome.FAILED, "body is not JSON", error_class="poison", http_status=200, attempts=1),
        ]
    )
    members = {"b": Member("b", "retry", tier2_days_used=1)}
    routed = {r.resource_id: r for r in route_results(raw, members, budget_days=3).results}
    assert routed["a"].outcome is Outcome.CHANGED
    assert (routed["b"].outcome, routed["b"].tier2_days_used) == (Outcome.RETRY, 2)
    assert "tier 2 day 2 of 3" in routed["b"].reason and "HTTP 503" in routed["b"].reason
    assert routed["c"].outcome is Outcome.DEAD
    assert all(r.outcome is not Outcome.FAILED for r in routed.values())


_WAIT = SourceApiClient(
    client_settings("http://x", {"client.retries.backoff_initial": 0.25, "client.retries.backoff_max": 8.0})
)._retrying.wait  # noqa: SLF001


@given(st.integers(min_value=1, max_value=30))
def test_backoff_grows_and_stays_capped(attempt):
    wait = _WAIT
    state = RetryCallState(None, None, (), {})
    state.attempt_number = attempt
    waits = [wait(state) for _ in range(20)]
    floor = min(0.25 * 2 ** (attempt - 1), 8.0)
    assert all(min(floor, 8.0) <= w <= 8.0 for w in waits)  # exponential, jitter on top, capped
    if attempt <= 3:
        assert max(waits) <= floor + 0.25  # jitter is at most backoff_initial
