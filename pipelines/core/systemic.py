"""The systemic failure guard: N resources failing the same way is one fault of the API. Pure.

A revoked token, a typo in the fingerprint fields, a path that 404s for everything, an
envelope the bulk probe does not have: each shows up as the same error on every resource.
Treating that per resource quarantines the whole watchlist (every sub-job dead-lettered or
marked gone). The guard watches the outcome of each sub-job's calls, per kind of call (probe,
bulk probe, detail): when, over the last ``window`` of them, or over one batch's (at least
``min_batch``), a share of ``ratio`` or more failed with the same signature, it raises an
``ApiFailure`` naming the settings most likely at fault. Transient errors and 429s are the
circuit breaker's business, not this guard's.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.core.errors import ApiFailure, ErrorClass, SourceError

WATCHED = frozenset({ErrorClass.POISON, ErrorClass.GONE, ErrorClass.PERMANENT})


@dataclass(frozen=True)
class GuardPolicy:
    ratio: float = 0.9  # 0: the guard is off
    window: int = 50  # the last calls of one kind judged together (fewer than a batch's)
    min_batch: int = 10  # a batch's calls of one kind judged at its end, when it has this many

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"the systemic failure ratio must be in [0, 1], got {self.ratio}")
        if self.window < 1 or self.min_batch < 1:
            raise ValueError("the systemic guard's window and min_batch must be >= 1")


class SystemicGuard:
    """One per client (a step): every batch it runs feeds it."""

    def __init__(self, policy: GuardPolicy = GuardPolicy()) -> None:
        self.policy = policy
        self._recent: dict[str, deque[str | None]] = {}
        self._counts: dict[str, Counter[str | None]] = {}  # the signatures in _recent, kept as it moves
        self._examples: dict[str, SourceError] = {}

    def observe(self, kind: str, error: SourceError | None, weight: int = 1) -> None:
        """One call's outcome for ``weight`` sub-jobs (a bulk probe answers for a hundred).
        Raises ApiFailure when the recent calls of ``kind`` overwhelmingly failed alike.

        Counted as the window moves (this runs for every call): only a failure can raise a
        failure's share, so the window is judged when one arrives, or when it first fills."""
        if not self.policy.ratio:
            return
        if error is None and weight == 1:  # most calls: a success pushing a success out changes no count
            recent = self._recent.get(kind)
            if recent is not None and len(recent) == self.policy.window and recent[0] is None:
                recent.append(None)
                return
        signature = self._signature(error)
        window = self.policy.window
        recent = self._recent.get(kind)
        if recent is None:
            recent = self._recent[kind] = deque(maxlen=window)
            self._counts[kind] = Counter()
        counts = self._counts[kind]
        was_full = len(recent) == window
        for _ in range(min(weight, window)):
            if len(recent) == window:
                counts[recent[0]] -= 1
            recent.append(signature)
            counts[signature] += 1
        if len(recent) == window and (signature is not None or not was_full):
            self._judge(kind, counts, f"of the last {len(recent)}")

    def judge_batch(self, outcomes: Iterable[tuple[str, SourceError | None]]) -> None:
        """At a batch's end, before anything is written: its calls, kind by kind."""
        if not self.policy.ratio:
            return
        by_kind: dict[str, list[str | None]] = {}
        for kind, error in outcomes:
            by_kind.setdefault(kind, []).append(self._signature(error))
        for kind, signatures in by_kind.items():
            if len(signatures) >= self.policy.min_batch:
                self._judge(kind, Counter(signatures), f"of this batch's {len(signatures)}")

    def _signature(self, error: SourceError | None) -> str | None:
        if error is None or error.error_class not in WATCHED:
            return None
        signature = error.signature()
        self._examples.setdefault(signature, error)
        return signature

    def _judge(self, kind: str, counts: Counter[str | None], scope: str) -> None:
        total = sum(counts.values())
        failures = [(n, signature) for signature, n in counts.items() if signature is not None and n]
        if not failures:
            return
        n, signature = max(failures)
        if n < self.policy.ratio * total:
            return
        example = self._examples[signature]
        status = f", HTTP {example.status}" if example.status else ""
        where = f", e.g. {example.url}" if example.url else ""
        raise ApiFailure(
            "systemic_failure",
            f"{n} {scope} {kind} calls failed the same way ({example.error_class}: {example.message}{status}{where}): "
            "that is the API or its configuration failing, not so many resources. The run stops; the batches "
            "in flight write nothing and no resource is quarantined",
            likely_settings(kind, example),
            example,
        )


def likely_settings(kind: str, error: SourceError) -> tuple[str, ...]:
    """The declaration's keys an operator should look at first, for a fault shared by every
    resource (docs/sources.md)."""
    message = error.message
    if "fingerprint field" in message:
        return ("fingerprint", "probe.fields")
    if "lacks field" in message:
        if kind == "detail":
            return ("detail.path", "detail.required", "fingerprint")
        return ("probe.fields", "fingerprint")
    if "larger than" in message:
        return ("client.max_response_bytes", "probe.fields")
    if kind == "bulk_probe":
        return ("bulk_probe.path", "bulk_probe.ids_param", "bulk_probe.separator", "bulk_probe.data_selector")
    if kind == "listing":
        return ("listing.path", "listing.paginator", "listing.data_selector")
    if error.error_class is ErrorClass.PERMANENT and error.status == 400:
        return ("probe.fields", "projection.param", "probe.path")
    path = "detail.path" if kind == "detail" else "probe.path"
    return (path, "client.base_url")
