"""The async HTTP client of the source API.

Every HTTP detail lives here: connection pooling, separate connect and read timeouts, an adaptive
request rate (paced, shared through Redis when configured, cut on ``429 Retry-After`` which
pauses every caller), a concurrency limit that latency moves, and tier 1 retries of transient
errors with capped exponential backoff and jitter (tenacity). The token travels only in the
``Authorization`` header and is never part of a URL, a log line or an error.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pipelines.source.breaker import CircuitBreaker, Go, Reject
from pipelines.source.concurrency import ConcurrencyGate
from pipelines.source.errors import BODY_EXCERPT, ErrorClass, SourceError, classify_status, safe_headers
from pipelines.source.ratecontrol import INF, GradientLimit, RatePolicy
from pipelines.source.records import BulkProbeBody, ListingBody, parse_json, validate_record
from pipelines.source.shared_rate import LocalRate, RedisRate


@dataclass(frozen=True)
class ClientSettings:
    """How to reach and speak to the API. Paths and parameter names adapt to other APIs."""

    base_url: str
    token: str | None = None
    proxy_url: str | None = None
    item_path: str = "/items/{id}"
    detail_path: str = "/items/{id}/details"
    items_path: str = "/items"
    fields_param: str = "fields"
    ids_param: str = "ids"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_concurrency: int = 16  # the most requests in flight; latency may lower the limit
    min_concurrency: int = 2  # the least the limit comes down to
    rate_limit: float = 0.0  # requests/s never exceeded (0: none; 429s find the API's rate)
    rate_limiter_url: str | None = None  # redis://...: one rate for every client naming it
    rate_limiter_key: str | None = None  # the shared budget's name (default: from base_url)
    max_attempts: int = 4
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    max_throttle_wait: float = 600.0
    bulk_size: int = 100
    breaker_window: int = 50
    breaker_min_calls: int = 20
    breaker_failure_ratio: float = 0.5
    breaker_cooldown: float = 30.0
    breaker_hold: float = 60.0


@dataclass
class CallMeter:
    """Calls sent (each one billable, whatever its answer), bytes received, 429s and retries."""

    calls: Counter[str] = field(default_factory=Counter)
    bytes_received: int = 0
    throttled: int = 0
    retries: int = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def add(self, other: CallMeter) -> None:
        self.calls.update(other.calls)
        self.bytes_received += other.bytes_received
        self.throttled += other.throttled
        self.retries += other.retries


@dataclass(frozen=True)
class Probe:
    """A probe's answer: the projected record, or ``not_modified`` for a 304."""

    record: dict | None
    etag: str | None
    not_modified: bool = False
    attempts: int = 1


@dataclass(frozen=True)
class Detail:
    record: dict
    attempts: int = 1


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, SourceError) and exc.error_class is ErrorClass.TRANSIENT


def _rate(settings: ClientSettings) -> LocalRate | RedisRate:
    policy = RatePolicy(ceiling=settings.rate_limit if settings.rate_limit > 0 else INF)
    if settings.rate_limiter_url:
        key = settings.rate_limiter_key or f"pipelines:rate:{settings.base_url}"
        return RedisRate(settings.rate_limiter_url, key, policy)
    return LocalRate(policy)


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


class SourceApiClient:
    """Use as ``async with SourceApiClient(settings) as client:``."""

    def __init__(self, settings: ClientSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.meter = CallMeter()
        headers = {"Accept": "application/json"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=headers,
            transport=transport,
            proxy=settings.proxy_url if transport is None else None,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(
                max_connections=settings.max_concurrency,
                max_keepalive_connections=settings.max_concurrency,
            ),
        )
        self.gate = ConcurrencyGate(
            GradientLimit(settings.max_concurrency, min(settings.min_concurrency, settings.max_concurrency))
        )
        self.rate = _rate(settings)
        self._paused_until = 0.0  # this client's own view of the last 429's pause
        self.breaker = CircuitBreaker(
            window=settings.breaker_window,
            min_calls=settings.breaker_min_calls,
            failure_ratio=settings.breaker_failure_ratio,
            cooldown=settings.breaker_cooldown,
            hold=settings.breaker_hold,
        )
        # Tier 1: transient errors only, capped exponential backoff with full jitter on top.
        self._retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(settings.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=settings.backoff_initial, jitter=settings.backoff_initial, max=settings.backoff_max
            ),
            reraise=True,
        )

    async def __aenter__(self) -> SourceApiClient:
        if isinstance(self.rate, RedisRate):
            await self.rate.ping()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
        await self.rate.aclose()

    def limits(self) -> dict[str, float]:
        """The rate (requests/s; inf: none) and concurrency limit in force, and requests in flight."""
        return {"rate": self.rate.current(), "concurrency": self.gate.limit.allowed(), "in_flight": self.gate.in_flight}

    # -- calls ----------------------------------------------------------------------------

    async def probe(
        self, rid: str, fields: Sequence[str], etag: str | None = None, meter: CallMeter | None = None
    ) -> Probe:
        """The cheap first call: projected fields, conditional on ``etag`` when given."""
        params = {self.settings.fields_param: ",".join(fields)} if fields else None
        headers = {"If-None-Match": etag} if etag else None
        response, attempts = await self._get(
            "probe", self.settings.item_path.format(id=rid), params=params, headers=headers, meter=meter
        )
        new_etag = response.headers.get("etag")
        if response.status_code == 304:
            return Probe(None, new_etag or etag, not_modified=True, attempts=attempts)
        record = self._record(response, fields, rid, attempts)
        return Probe(record, new_etag, attempts=attempts)

    async def bulk_probe(
        self, rids: Sequence[str], fields: Sequence[str], meter: CallMeter | None = None
    ) -> tuple[dict[str, dict], list[str]]:
        """Projected records of up to ``bulk_size`` ids in one call, and the ids it calls missing."""
        if len(rids) > self.settings.bulk_size:
            raise ValueError(f"bulk probe takes at most {self.settings.bulk_size} ids, got {len(rids)}")
        params = {self.settings.ids_param: ",".join(rids)}
        if fields:
            params[self.settings.fields_param] = ",".join(fields)
        response, attempts = await self._get("bulk_probe", self.settings.items_path, params=params, meter=meter)
        body = self._parsed(response, BulkProbeBody, attempts)
        records: dict[str, dict] = {}
        for item in body.items:
            try:
                record = validate_record(item, fields)
            except SourceError:
                continue  # a bad item stays unanswered; the caller sees it as neither found nor missing
            records[record["id"]] = record
        return records, list(body.missing)

    async def detail(self, rid: str, required: Sequence[str], meter: CallMeter | None = None) -> Detail:
        """The expensive second call: the whole resource."""
        response, attempts = await self._get("detail", self.settings.detail_path.format(id=rid), meter=meter)
        return Detail(self._record(response, required, rid, attempts), attempts)

    async def iter_ids(self, page_size: int = 500, meter: CallMeter | None = None) -> AsyncIterator[list[str]]:
        """Every id the listing serves, a page at a time (pages are yielded, never piled up)."""
        cursor: str | None = ""
        while cursor is not None:
            params = {"cursor": cursor, "limit": str(page_size), self.settings.fields_param: "id"}
            response, attempts = await self._get("listing", self.settings.items_path, params=params, meter=meter)
            body = self._parsed(response, ListingBody, attempts)
            yield [validate_record(item, ("id",))["id"] for item in body.items]
            cursor = None if body.next_cursor is None else str(body.next_cursor)

    # -- plumbing -------------------------------------------------------------------------

    async def _get(
        self,
        kind: str,
        path: str,
        params: dict | None = None,
        headers: dict | None = None,
        meter: CallMeter | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send with tier 1 retries; answer the response (2xx or 304) and the attempts it took.

        The first attempt goes outside tenacity (setting up its loop costs more than the request's
        own bookkeeping); a transient failure is handed to tenacity as its attempt 1, so the
        retries, their waits and their numbering are tenacity's.
        """
        try:
            return await self._send(kind, path, params, headers, meter), 1
        except SourceError as exc:
            if not _is_transient(exc) or self.settings.max_attempts == 1:
                raise
            first = exc
        attempt_no = 1
        try:
            async for attempt in self._retrying.copy():
                with attempt:
                    attempt_no = attempt.retry_state.attempt_number
                    if attempt_no == 1:
                        raise first
                    self._count(meter, retries=1)
                    return await self._send(kind, path, params, headers, meter), attempt_no
        except SourceError as exc:
            exc.attempts = attempt_no
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, kind: str, path: str, params: dict | None, headers: dict | None, meter: CallMeter | None
    ) -> httpx.Response:
        """One attempt; 429s are waited out here and never count as the resource's fault."""
        throttled_for = 0.0
        while True:
            async with self.gate.slot():
                # The breaker is asked at the last moment, in the slot: a request that queued
                # for a slot while the API went down must not be sent after the breaker opened.
                trial = await self._pass_breaker(path)
                failed = True
                try:
                    await self._wait_turn()
                    request = self._http.build_request("GET", path, params=params, headers=headers)
                    sent = time.monotonic()
                    try:
                        response = await self._http.send(request)
                    except httpx.TransportError as exc:  # timeouts included: sent, so billable
                        self._count(meter, kind=kind)
                        what = "timeout" if isinstance(exc, httpx.TimeoutException) else "transport error"
                        raise self._error(ErrorClass.TRANSIENT, f"{what}: {type(exc).__name__}", request) from None
                    rtt = time.monotonic() - sent
                    error_class = classify_status(response.status_code)
                    failed = error_class is ErrorClass.TRANSIENT
                finally:
                    self.breaker.record(failed, trial)
            self._count(meter, kind=kind, received=len(response.content))
            if error_class is not ErrorClass.THROTTLED and not failed:
                self.gate.sample(rtt)
            if error_class is None:
                return response
            if error_class is ErrorClass.THROTTLED:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                self._count(meter, throttled=1)
                throttled_for += wait
                if throttled_for > self.settings.max_throttle_wait:
                    raise self._error(ErrorClass.TRANSIENT, "throttled for too long", request, response)
                self._paused_until = max(self._paused_until, time.monotonic() + wait)
                await self.rate.throttled(wait)
                continue
            raise self._error(error_class, f"HTTP {response.status_code}", request, response)

    async def _wait_turn(self) -> None:
        """Wait for this request's slot of the (shared) rate, and out any pause a 429 set meanwhile."""
        while True:
            wait = await self.rate.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            if time.monotonic() >= self._paused_until:
                return
            await asyncio.sleep(self._paused_until - time.monotonic())

    async def _pass_breaker(self, path: str) -> bool:
        """Wait while the breaker holds calls; True when this call is its half-open trial."""
        while True:
            decision = self.breaker.before_call()
            if isinstance(decision, Go):
                return decision.trial
            if isinstance(decision, Reject):
                raise SourceError(ErrorClass.CIRCUIT_OPEN, decision.reason, url=str(self._http.base_url.join(path)))
            await asyncio.sleep(decision.seconds)

    def _count(
        self, meter: CallMeter | None, kind: str | None = None, received: int = 0, throttled: int = 0, retries: int = 0
    ) -> None:
        for m in (self.meter, meter) if meter is not None else (self.meter,):
            if kind:
                m.calls[kind] += 1
            m.bytes_received += received
            m.throttled += throttled
            m.retries += retries

    def _record(self, response: httpx.Response, required: Sequence[str], rid: str, attempts: int) -> dict:
        try:
            return validate_record(parse_json(response.content), required, expected_id=rid)
        except SourceError as exc:
            raise self._error(exc.error_class, exc.message, response.request, response, attempts) from None

    def _parsed(self, response: httpx.Response, model, attempts: int):
        try:
            return model.model_validate(parse_json(response.content))
        except SourceError as exc:
            raise self._error(exc.error_class, exc.message, response.request, response, attempts) from None
        except ValueError as exc:  # pydantic's ValidationError
            raise self._error(
                ErrorClass.POISON, f"body fails the schema: {exc}", response.request, response, attempts
            ) from None

    @staticmethod
    def _error(
        error_class: ErrorClass,
        message: str,
        request: httpx.Request,
        response: httpx.Response | None = None,
        attempts: int = 1,
    ) -> SourceError:
        return SourceError(
            error_class=error_class,
            message=message,
            method=request.method,
            url=str(request.url),
            status=response.status_code if response is not None else None,
            request_headers=safe_headers(dict(request.headers)),
            headers=safe_headers(dict(response.headers)) if response is not None else {},
            body_excerpt=response.content[:BODY_EXCERPT].decode("utf-8", "replace") if response is not None else "",
            attempts=attempts,
        )
