"""Sources that call one API host share one request budget (its name: the host, unless a source
names its own ``rate.budget``); with ``SOURCE_RATE_LIMITER_URL`` every client of every source
draws on it in Redis. Such sources must agree on the budget's rate: two rates for one budget
is a mistake refused when the code location loads, naming both sources."""

from __future__ import annotations

from collections.abc import Mapping

from pipelines.source.config import MissingSecretError, host_of, resolve_base_url
from pipelines.sync.resources import DeclaredSource


class BudgetConflictError(ValueError):
    """Two sources share a request budget and declare different rates for it."""


def budgets(apis: Mapping[str, DeclaredSource]) -> dict[str, list[tuple[str, float]]]:
    """Each shared budget's (source, declared requests per second); the embedded sample has none."""
    found: dict[str, list[tuple[str, float]]] = {}
    for api in apis.values():
        declared = api.declaration()
        if declared.embedded:
            continue
        try:
            url = resolve_base_url(declared)
        except MissingSecretError:  # the URL's variable is the deployment's: unknown here, checked when run
            url = None
        if declared.rate.budget is None and url is None:
            continue
        name = declared.rate.budget or host_of(url or "")
        found.setdefault(name, []).append((declared.name, declared.rate.requests_per_second))
    return found


def check_budgets(apis: Mapping[str, DeclaredSource]) -> None:
    for budget, members in budgets(apis).items():
        if len({rate for _, rate in members}) > 1:
            said = ", ".join(f"{source} declares {rate:g}/s" for source, rate in members)
            raise BudgetConflictError(
                f"sources {', '.join(s for s, _ in members)} share the request budget {budget} (one API host) "
                f"but not its rate: {said}. Declare the same rate.requests_per_second in each, or give one "
                "its own rate.budget"
            )
