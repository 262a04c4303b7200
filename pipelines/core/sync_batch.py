"""One batch: probe, decide what changed, fetch details only for that. No Dagster, no SQL.

The caller hands over the stored fingerprints and gets back one result per sub-job and the rows
to upsert; every call goes through the client, which owns rates, retries and timeouts.

Each call's outcome is shown to the systemic guard as it arrives (the fingerprint, computed
right after the probe, counts as part of it): if every resource fails the same way the guard
raises ``ApiFailure``, the batch's other calls are cancelled and nothing is returned to write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pipelines.core.batching import chunked
from pipelines.core.errors import ErrorClass, SourceError
from pipelines.core.fingerprint import Change, MissingFieldsError, decide, fingerprint
from pipelines.core.ids import id_problem
from pipelines.core.meter import CallMeter, Detail, Probe
from pipelines.core.outcomes import BatchResult, Outcome, ResourceUpdate, StoredState, SubJobResult
from pipelines.core.ports import Prober
from pipelines.core.statuses import ResourceStatus
from pipelines.core.systemic import GuardPolicy, SystemicGuard
from pipelines.core.tasks import gather_or_fail

Observed = list[tuple[str, SourceError | None]]


class ProbeStrategy(StrEnum):
    PROJECTED = "projected"  # GET /items/{id}?fields=...
    CONDITIONAL = "conditional"  # the same with If-None-Match: 304 when unchanged
    BULK = "bulk"  # GET /items?ids=...&fields=... , 100 ids a call
    LISTING = "listing"  # the day's listing carried the fingerprints: no probe for an id it served
    CHANGED_SINCE = "changed_since"  # the listing of what changed: an id it did not serve is unchanged


@dataclass(frozen=True)
class Listed:
    """What the day's listing said, for the listing strategies: the fingerprint of every id it
    served, the fields it served (its projected record) and, where the listing carries them,
    the details of new and changed ids; ``changed_only``: it served only what changed, so a
    stored id it left out is unchanged; ``must_probe``: ids never assumed unchanged (tier 2
    retries and replays: their change may predate the filter)."""

    fingerprints: Mapping[str, str] = field(default_factory=dict)
    changed_only: bool = False
    must_probe: frozenset[str] = frozenset()
    records: Mapping[str, dict] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    authoritative: bool = False  # a complete listing the declaration trusts: an id it did not serve is gone
    probed: Mapping[str, Any] = field(default_factory=dict)  # ids it did not serve, probed together for the step


async def sync_batch(
    client: Prober,
    resource_ids: Sequence[str],
    stored: Mapping[str, StoredState],
    *,
    strategy: ProbeStrategy,
    probe_fields: Sequence[str],
    fingerprint_fields: Sequence[str],
    meter: CallMeter,
    guard: SystemicGuard | None = None,
    listed: Listed | None = None,
) -> BatchResult:
    guard = guard or SystemicGuard(GuardPolicy(ratio=0))
    observed: Observed = []
    result = BatchResult()
    sendable = []
    known: dict[str, tuple[Probe, str | None] | SourceError] = {}  # answered already: no call made here
    for rid in resource_ids:
        problem = id_problem(rid, client.id_type)
        if problem is not None:  # never sent, never blocks the others: its own outcome, in the dead letter
            _record_failure(result, rid, SourceError(ErrorClass.INVALID_ID, f"id {problem}: cannot be sent or stored"))
        elif listed is not None and rid in listed.fingerprints:
            probe = Probe(listed.records.get(rid), etag=None, attempts=0, detail=listed.details.get(rid))
            known[rid] = (probe, listed.fingerprints[rid])
        elif listed is not None and (need := unserved_need(listed, rid, stored)) is not None:
            if need == "unchanged":
                previous = stored[rid]
                result.results.append(SubJobResult(rid, Outcome.UNCHANGED, "not_changed_since", attempts=0))
                result.updates.append(ResourceUpdate(rid, ResourceStatus.LIVE, previous.fingerprint, previous.etag))
            elif need == "gone":
                result.results.append(SubJobResult(rid, Outcome.GONE, "not in the authoritative listing", attempts=0))
                result.updates.append(ResourceUpdate(rid, ResourceStatus.GONE))
            elif rid in listed.probed:
                known[rid] = listed.probed[rid]
            else:
                sendable.append(rid)
        else:
            sendable.append(rid)
    if strategy in (ProbeStrategy.LISTING, ProbeStrategy.CHANGED_SINCE):  # the rest is probed as declared
        strategy = ProbeStrategy.BULK if client.bulk_size is not None else ProbeStrategy.PROJECTED
        guard = _ExpectingGone(guard)  # type: ignore[assignment]

    async def probe_one(rid: str) -> tuple[Probe, str | None]:
        etag = _etag(stored, rid) if strategy is ProbeStrategy.CONDITIONAL else None
        answer = await client.probe(rid, probe_fields, etag=etag, meter=meter)
        return answer, None if answer.not_modified else _fingerprint(answer, fingerprint_fields)

    probes = await _probe_all(
        client, sendable, strategy, probe_fields, fingerprint_fields, meter, probe_one, guard, observed
    )
    probes.update(known)
    to_fetch: list[tuple[str, str, Probe, str]] = []
    for rid in [*known, *sendable]:
        answer = probes[rid]
        if isinstance(answer, SourceError):
            _record_failure(result, rid, answer)
            continue
        probe, current = answer
        previous = stored.get(rid, StoredState(None))
        if probe.not_modified:
            result.results.append(SubJobResult(rid, Outcome.UNCHANGED, "not_modified", attempts=probe.attempts))
            result.updates.append(ResourceUpdate(rid, ResourceStatus.LIVE, previous.fingerprint, probe.etag))
            continue
        assert current is not None
        change = decide(previous.fingerprint, current)
        if change is Change.UNCHANGED:
            result.results.append(SubJobResult(rid, Outcome.UNCHANGED, "same_fingerprint", attempts=probe.attempts))
            result.updates.append(ResourceUpdate(rid, ResourceStatus.LIVE, current, probe.etag, probe.record))
        else:
            to_fetch.append((rid, current, probe, change.value))

    details = await gather_or_fail(
        *(_detail_of(client, rid, probe, meter, guard, observed) for rid, _, probe, _ in to_fetch)
    )
    guard.judge_batch(observed)  # before anything of the batch is written
    for (rid, current, probe, reason), detail in zip(to_fetch, details, strict=True):
        if isinstance(detail, SourceError):  # the sub-job's attempts: its probe's and its detail's
            _record_failure(result, rid, replace(detail, attempts=detail.attempts + probe.attempts))
            continue
        attempts = probe.attempts + detail.attempts
        result.results.append(SubJobResult(rid, Outcome.CHANGED, reason, attempts=attempts))
        result.updates.append(
            ResourceUpdate(rid, ResourceStatus.LIVE, current, probe.etag, probe.record, detail.record, changed=True)
        )
    return result


def unserved_need(listed: Listed, rid: str, stored: Mapping[str, StoredState]) -> str | None:
    """What an id the day's listing did not serve needs: None (it served it), "unchanged" (a
    filtered listing leaves out what did not change), "gone" (a complete listing the
    declaration calls authoritative), or "probe". Tier 2 retries and replays, and ids with
    nothing stored, are always probed."""
    if rid in listed.fingerprints:
        return None
    if rid in listed.must_probe or not _has_state(stored, rid):
        return "probe"
    if listed.changed_only:
        return "unchanged"
    return "gone" if listed.authoritative else "probe"


async def probe_together(
    client: Prober,
    resource_ids: Sequence[str],
    *,
    probe_fields: Sequence[str],
    fingerprint_fields: Sequence[str],
    meter: CallMeter,
    guard: SystemicGuard,
) -> dict[str, tuple[Probe, str | None] | SourceError]:
    """Probe ids from many batches together (a bulk call per ``bulk_size``): the ids a day's
    listing did not serve, which one bulk probe each batch would otherwise pay for. Gone is the
    answer expected of them, not a sign of the API failing."""
    assert client.bulk_size is not None

    async def alone(rid: str) -> tuple[Probe, str | None]:
        answer = await client.probe(rid, probe_fields, meter=meter)
        return answer, _fingerprint(answer, fingerprint_fields)

    observed: Observed = []
    watching = _ExpectingGone(guard)
    return await _probe_all(
        client,
        list(resource_ids),
        ProbeStrategy.BULK,
        probe_fields,
        fingerprint_fields,
        meter,
        alone,
        watching,
        observed,
    )


def _fingerprint(probe: Probe, fields: Sequence[str]) -> str:
    try:
        return fingerprint(probe.record or {}, fields)
    except MissingFieldsError as exc:
        raise SourceError(ErrorClass.POISON, str(exc), attempts=probe.attempts, kind="probe") from None


def _record_failure(result: BatchResult, rid: str, error: SourceError) -> None:
    if error.error_class is ErrorClass.GONE:
        result.results.append(
            SubJobResult(
                rid, Outcome.GONE, error.message, error_class=None, http_status=error.status, attempts=error.attempts
            )
        )
        result.updates.append(ResourceUpdate(rid, ResourceStatus.GONE))
        return
    result.results.append(
        SubJobResult(
            rid,
            Outcome.FAILED,
            error.message,
            error_class=error.error_class.value,
            http_status=error.status,
            attempts=error.attempts,
            error=error,
        )
    )


async def _probe_all(
    client, resource_ids, strategy, probe_fields, fingerprint_fields, meter, probe_one, guard, observed
):
    """Every id's (probe, fingerprint), or the SourceError its probe ended with."""
    singles = resource_ids
    answers: dict[str, tuple[Probe, str | None] | SourceError] = {}
    if strategy is ProbeStrategy.BULK:
        singles = [rid for rid in resource_ids if not client.bulk_safe(rid)]  # the separator is in the id
        bulk_ids = [rid for rid in resource_ids if client.bulk_safe(rid)]

        async def bulk_one(chunk: list[str]) -> None:
            try:
                records, missing = await client.bulk_probe(chunk, probe_fields, meter=meter)
            except SourceError as exc:
                answers.update(dict.fromkeys(chunk, exc))
                observed.extend([("bulk_probe", exc)] * len(chunk))
                guard.observe("bulk_probe", exc, weight=len(chunk))
                return
            gone = set(missing)
            for rid in chunk:
                answer: tuple[Probe, str | None] | SourceError
                if rid in records:
                    record, carried = client.embedded(records[rid], rid, "bulk_probe")
                    probe = Probe(record, etag=None, detail=carried)
                    try:
                        answer = probe, _fingerprint(probe, fingerprint_fields)
                    except SourceError as exc:
                        answer = replace(exc, kind="bulk_probe")
                elif rid in gone:
                    answer = SourceError(ErrorClass.GONE, "missing from the bulk probe", kind="bulk_probe")
                else:
                    answer = SourceError(
                        ErrorClass.POISON,
                        "bulk probe item absent, without a usable id, or served twice saying different things",
                        kind="bulk_probe",
                    )
                answers[rid] = answer
                error = answer if isinstance(answer, SourceError) else None
                observed.append(("bulk_probe", error))
                guard.observe("bulk_probe", error)

        max_ids = client.bulk_size
        assert max_ids is not None  # the declaration refuses strategy bulk without a bulk probe
        await gather_or_fail(*(bulk_one(chunk) for chunk in chunked(bulk_ids, max_ids)))
    replies = await gather_or_fail(*(_observed("probe", probe_one(rid), guard, observed) for rid in singles))
    answers.update(zip(singles, replies, strict=True))
    return answers


class _ExpectingGone:
    """The guard, for ids probed because the listing no longer serves them: gone is the answer
    expected of them (deleted resources), not a sign that the API is failing as a whole."""

    def __init__(self, guard: SystemicGuard) -> None:
        self.guard = guard

    def observe(self, kind: str, error: SourceError | None, weight: int = 1) -> None:
        self.guard.observe(kind, _news(error), weight=weight)

    def judge_batch(self, observed: Observed) -> None:
        self.guard.judge_batch([(kind, _news(error)) for kind, error in observed])


def _news(error: SourceError | None) -> SourceError | None:
    return None if error is not None and error.error_class is ErrorClass.GONE else error


def _has_state(stored: Mapping[str, StoredState], rid: str) -> bool:
    state = stored.get(rid)
    return state is not None and state.fingerprint is not None


def _etag(stored: Mapping[str, StoredState], rid: str) -> str | None:
    state = stored.get(rid)
    return state.etag if state and state.fingerprint else None


async def _detail_of(
    client: Prober, rid: str, probe: Probe, meter: CallMeter, guard: SystemicGuard, observed: Observed
):
    """The resource's detail: the one its probe's answer carried (no call), else its own call."""
    if probe.detail is not None:
        meter.embedded += 1
        return Detail(probe.detail, attempts=0)
    return await _observed("detail", client.detail(rid, meter=meter), guard, observed)


async def _observed(kind: str, call: Awaitable, guard: SystemicGuard, observed: Observed):
    """The call's answer, or the SourceError it raised (one sub-job's failure never sinks the
    batch); shown to the guard, which raises ApiFailure when the API fails as a whole."""
    try:
        answer = await call
    except SourceError as exc:
        answer = exc
    error = answer if isinstance(answer, SourceError) else None
    observed.append((kind, error))
    guard.observe(kind, error)
    return answer
