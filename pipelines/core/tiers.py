"""Where a failed sub-job goes: the three tiers of the failure model. Pure.

tier 1  in the client: transient errors retried with backoff and jitter (tenacity).
tier 2  the retry queue: a sub-job whose tier 1 budget ran out comes back the next day, for up
        to ``budget_days`` days; the circuit breaker's held sub-jobs come back too, free.
tier 3  the dead letter: poison, permanent errors and unusable ids at once, and tier 2 exhaustion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from pipelines.core.errors import ErrorClass
from pipelines.core.outcomes import BatchResult, Member, Outcome


@dataclass(frozen=True)
class TierRoute:
    outcome: Outcome
    tier2_days_used: int  # what the retry queue entry carries (unchanged unless queued)
    reason: str


def route_failure(error_class: str, tier2_days_used: int, budget_days: int) -> TierRoute:
    """The outcome of a sub-job that failed with ``error_class`` after its tier 1 attempts."""
    kind = ErrorClass(error_class)
    if kind is ErrorClass.GONE:
        return TierRoute(Outcome.GONE, tier2_days_used, "gone at the source")
    if kind in (ErrorClass.POISON, ErrorClass.PERMANENT, ErrorClass.INVALID_ID, ErrorClass.AUTH):
        return TierRoute(Outcome.DEAD, tier2_days_used, f"{kind}: not retried")
    if kind is ErrorClass.CIRCUIT_OPEN:
        return TierRoute(Outcome.RETRY, tier2_days_used, "held by the circuit breaker (free retry)")
    if kind is ErrorClass.SPEND_CEILING:
        return TierRoute(
            Outcome.RETRY, tier2_days_used, "held by the day's spending ceiling (free retry, first tomorrow)"
        )
    if kind is ErrorClass.DEFERRED:
        return TierRoute(Outcome.RETRY, tier2_days_used, "deferred: the API throttled the client (free retry)")
    # transient (and throttled for too long): tier 2 while the budget lasts
    if tier2_days_used < budget_days:
        return TierRoute(Outcome.RETRY, tier2_days_used + 1, f"tier 2 day {tier2_days_used + 1} of {budget_days}")
    return TierRoute(Outcome.DEAD, tier2_days_used, f"tier 2 exhausted after {budget_days} day(s)")


def route_results(result: BatchResult, members: Mapping[str, Member], budget_days: int) -> BatchResult:
    """The batch's results with every FAILED one routed to RETRY, DEAD (or GONE)."""
    routed = BatchResult(updates=list(result.updates))
    for r in result.results:
        if r.outcome is not Outcome.FAILED:
            routed.results.append(r)
            continue
        member = members.get(r.resource_id, Member(r.resource_id))
        route = route_failure(r.error_class or ErrorClass.TRANSIENT.value, member.tier2_days_used, budget_days)
        routed.results.append(
            replace(
                r, outcome=route.outcome, reason=f"{route.reason}: {r.reason}", tier2_days_used=route.tier2_days_used
            )
        )
    return routed
