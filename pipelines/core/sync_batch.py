"""One batch: probe, decide what changed, fetch details only for that. No Dagster, no SQL.

The caller hands over the stored fingerprints and gets back one result per sub-job and the rows
to upsert; every call goes through the client, which owns rates, retries and timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from enum import StrEnum

from pipelines.core.batching import chunked
from pipelines.core.fingerprint import Change, MissingFieldsError, decide, fingerprint
from pipelines.core.outcomes import BatchResult, Outcome, ResourceUpdate, StoredState, SubJobResult
from pipelines.source.client import CallMeter, Probe, SourceApiClient
from pipelines.source.errors import ErrorClass, SourceError


class ProbeStrategy(StrEnum):
    PROJECTED = "projected"  # GET /items/{id}?fields=...
    CONDITIONAL = "conditional"  # the same with If-None-Match: 304 when unchanged
    BULK = "bulk"  # GET /items?ids=...&fields=... , 100 ids a call


async def sync_batch(
    client: SourceApiClient,
    resource_ids: Sequence[str],
    stored: Mapping[str, StoredState],
    *,
    strategy: ProbeStrategy,
    probe_fields: Sequence[str],
    fingerprint_fields: Sequence[str],
    meter: CallMeter,
) -> BatchResult:
    probes = await _probe_all(client, resource_ids, stored, strategy, probe_fields, meter)
    result = BatchResult()
    to_fetch: list[tuple[str, str, Probe, str]] = []
    for rid in resource_ids:
        answer = probes[rid]
        if isinstance(answer, SourceError):
            _record_failure(result, rid, answer)
            continue
        previous = stored.get(rid, StoredState(None))
        if answer.not_modified:
            result.results.append(SubJobResult(rid, Outcome.UNCHANGED, "not_modified", attempts=answer.attempts))
            result.updates.append(ResourceUpdate(rid, "live", previous.fingerprint, answer.etag))
            continue
        try:
            current = fingerprint(answer.record, fingerprint_fields)
        except MissingFieldsError as exc:
            _record_failure(result, rid, SourceError(ErrorClass.POISON, str(exc), attempts=answer.attempts))
            continue
        change = decide(previous.fingerprint, current)
        if change is Change.UNCHANGED:
            result.results.append(SubJobResult(rid, Outcome.UNCHANGED, "same_fingerprint", attempts=answer.attempts))
            result.updates.append(ResourceUpdate(rid, "live", current, answer.etag, answer.record))
        else:
            to_fetch.append((rid, current, answer, change.value))

    details = await asyncio.gather(*(_detail(client, rid, fingerprint_fields, meter) for rid, *_ in to_fetch))
    for (rid, current, answer, reason), detail in zip(to_fetch, details, strict=True):
        if isinstance(detail, SourceError):
            detail.attempts += answer.attempts
            _record_failure(result, rid, detail)
            continue
        attempts = answer.attempts + detail.attempts
        result.results.append(SubJobResult(rid, Outcome.CHANGED, reason, attempts=attempts))
        result.updates.append(
            ResourceUpdate(rid, "live", current, answer.etag, answer.record, detail.record, changed=True)
        )
    return result


def _record_failure(result: BatchResult, rid: str, error: SourceError) -> None:
    if error.error_class is ErrorClass.GONE:
        result.results.append(SubJobResult(rid, Outcome.GONE, error.message, None, error.status, error.attempts))
        result.updates.append(ResourceUpdate(rid, "gone"))
        return
    result.results.append(
        SubJobResult(rid, Outcome.FAILED, error.message, error.error_class.value, error.status, error.attempts, error)
    )


async def _probe_all(client, resource_ids, stored, strategy, probe_fields, meter) -> dict:
    if strategy is ProbeStrategy.BULK:
        answers: dict[str, Probe | SourceError] = {}
        chunks = list(chunked(resource_ids, client.settings.bulk_size))
        replies = await asyncio.gather(
            *(_guard(client.bulk_probe(chunk, probe_fields, meter=meter)) for chunk in chunks)
        )
        for chunk, reply in zip(chunks, replies, strict=True):
            if isinstance(reply, SourceError):
                answers.update(dict.fromkeys(chunk, reply))
                continue
            records, missing = reply
            gone = set(missing)
            for rid in chunk:
                if rid in records:
                    answers[rid] = Probe(records[rid], etag=None)
                elif rid in gone:
                    answers[rid] = SourceError(ErrorClass.GONE, "missing from the bulk probe")
                else:
                    answers[rid] = SourceError(ErrorClass.POISON, "bulk probe item absent or invalid")
        return answers
    conditional = strategy is ProbeStrategy.CONDITIONAL
    replies = await asyncio.gather(
        *(
            _guard(client.probe(rid, probe_fields, etag=_etag(stored, rid) if conditional else None, meter=meter))
            for rid in resource_ids
        )
    )
    return dict(zip(resource_ids, replies, strict=True))


def _etag(stored: Mapping[str, StoredState], rid: str) -> str | None:
    state = stored.get(rid)
    return state.etag if state and state.fingerprint else None


async def _detail(client, rid, required, meter):
    return await _guard(client.detail(rid, required, meter=meter))


async def _guard(awaitable):
    """The call's answer, or the SourceError it raised (one sub-job's failure never sinks the batch)."""
    try:
        return await awaitable
    except SourceError as exc:
        return exc
