"""How one call goes out and comes back: the base of the client (``client.py`` makes the four
kinds of call on it).

A call is admitted (the API has not failed as a whole, the day is neither deferred nor out of
its ceiling), takes a slot of the concurrency limit, passes the breaker, waits for its turn of
the (shared) rate, is granted by the day's spending ceiling before it is sent, and is sent whole
within its deadline and size cap. Its answer is judged by the declaration's statuses: a 429
pauses every caller and is waited out within its bounds; a transient failure is retried by
tenacity (tier 1); a 401/403 stops every call of the client (``ApiFailure``), once an OAuth2
token has been renewed. Every call that reached the API is counted, billable, on the client's
meter and the caller's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, Self

import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pipelines.core.errors import ApiFailure, ErrorClass, SourceError, auth_failure
from pipelines.core.meter import CallMeter
from pipelines.core.redact import Redactor, url_secrets
from pipelines.core.urls import strip_userinfo
from pipelines.source.answers import UNSENT, judge, throttle_wait, usable_statuses
from pipelines.source.auth import authorize
from pipelines.source.body import ENCODINGS, BodyTooLarge, UnsupportedEncoding
from pipelines.source.breaker import CircuitBreaker, Go, Reject
from pipelines.source.concurrency import ConcurrencyGate
from pipelines.source.config import ClientSettings
from pipelines.source.failures import failure
from pipelines.source.ratecontrol import INF, GradientLimit, RatePolicy
from pipelines.source.senders import Sender, sender_for
from pipelines.source.shared_rate import LocalRate, RedisRate
from pipelines.source.spend import SpendCeilingReached, SpendLog
from pipelines.source.throttle import ThrottleAccount
from pipelines.source.wire import Answer, Call, Calls


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, SourceError) and exc.error_class is ErrorClass.TRANSIENT


def _rate(settings: ClientSettings) -> LocalRate | RedisRate:
    rps = settings.source.rate.requests_per_second
    policy = RatePolicy(ceiling=rps if rps > 0 else INF)
    if settings.rate_limiter_url:
        return RedisRate(settings.rate_limiter_url, f"pipelines:rate:{settings.budget}", policy)
    return LocalRate(policy, start=settings.learned_rate if rps <= 0 else None)


@dataclasses.dataclass(slots=True)
class _Waited:
    """The 429s one call waited out, and the seconds they asked for."""

    times: int = 0
    seconds: float = 0.0


class Caller:
    """The client's way out and back; use a ``SourceApiClient`` (``async with``)."""

    def __init__(
        self,
        settings: ClientSettings,
        transport: httpx.AsyncBaseTransport | Sender | None = None,
        spend: SpendLog | None = None,
        listing_spend: SpendLog | None = None,
    ) -> None:
        """``transport``: None sends over the network (aiohttp); an httpx transport (a test's) or
        a ``Sender`` (the embedded sample API's) sends through it instead. ``listing_spend``: where
        the listing's calls are written down, when apart from the others' (they are priced apart)."""
        self.settings = settings
        self.source = source = settings.source
        self.meter = CallMeter()
        self.spend = spend  # where calls are written down before they are sent, if anywhere
        self.listing_spend = listing_spend or spend
        self.failure: ApiFailure | None = None  # set once the API failed as a whole: no call goes after it
        declared, credentials = source.client, settings.credentials
        headers = {"Accept": "application/json", "Accept-Encoding": ENCODINGS, **declared.headers}
        self._params = dict(declared.params)
        # the declared auth's credential in every call's defaults; OAuth2's token fetched on open
        self.auth = authorize(
            declared.auth, credentials, settings.base_url, self._exchange_token, headers, self._params
        )
        self._token = self.auth.token
        self._bearer: str | None = None
        self._auth_setting = self.auth.setting or f"{source.name}: client.auth"
        self.redactor = Redactor(
            [*credentials.values(), *url_secrets(settings.base_url), *url_secrets(settings.proxy_url)]
        )
        timeouts, rate = declared.timeouts, source.rate
        # holds the base URL and default headers every call is built on (wire.Calls); sends only
        # through a given httpx transport
        self._http = httpx.AsyncClient(
            base_url=strip_userinfo(settings.base_url),
            headers=headers,
            transport=transport if isinstance(transport, httpx.AsyncBaseTransport) else _BUILDS_ONLY,
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
        )
        self._calls = Calls(self._http)
        self._sender = sender_for(transport, self._http, rate.max_concurrency, timeouts, settings.proxy_url)
        self._usable = usable_statuses(source.conditional, source.errors)
        errors = source.errors
        self.throttle = ThrottleAccount(
            errors.max_throttle_wait,
            errors.max_throttled_in_a_row or max(errors.max_throttle_attempts, 2 * rate.max_concurrency),
        )
        self.gate = ConcurrencyGate(GradientLimit(rate.max_concurrency, rate.min_concurrency))
        self.rate = _rate(settings)
        self._paused_until = 0.0  # this client's own view of the last 429's pause
        breaker = declared.breaker
        self.breaker = CircuitBreaker(
            window=max(50, breaker.min_calls),
            min_calls=breaker.min_calls,
            failure_ratio=breaker.failure_ratio,
            cooldown=breaker.cooldown,
            hold=breaker.hold,
        )
        # Tier 1: transient errors only, capped exponential backoff with full jitter on top.
        retries = declared.retries
        self._retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(retries.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=retries.backoff_initial, jitter=retries.backoff_initial, max=retries.backoff_max
            ),
            reraise=True,
        )
        self._prepare()

    async def __aenter__(self) -> Self:
        if isinstance(self.rate, RedisRate):
            await self.rate.ping()
        if self._token is not None:
            self._use_token(await self._token.current())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._sender.aclose()
        await self._http.aclose()
        await self.rate.aclose()
        calls = dict(self.meter.calls)
        await self.listing_done()
        if self.listing_spend is not self.spend:
            calls.pop("listing", None)  # written down apart
        if self.spend is not None:
            await self.spend.close(sum(calls.values()), self.source.cost.of(calls))

    async def listing_done(self) -> None:
        """The listing's calls are over (it is written down apart from the others'): what it
        was granted and did not use goes back to the day's ceiling now, not when the client
        closes."""
        if self.listing_spend is not self.spend and self.listing_spend is not None:
            listed = self.meter.calls["listing"]
            await self.listing_spend.close(listed, self.source.cost.of({"listing": listed}))

    @property
    def ceiling_reached(self) -> str | None:
        """The day's spending ceiling, once it held one of this client's calls back."""
        for spend in (self.spend, self.listing_spend):
            if spend is not None and spend.reached is not None:
                return spend.reached.describe()
        return None

    @property
    def learned_rate(self) -> float | None:
        """The rate this client's 429s taught it, when the declaration names none and no Redis
        shares it: the next client of the source starts from it (``ClientSettings.learned_rate``)."""
        if self.source.rate.requests_per_second > 0 or not isinstance(self.rate, LocalRate):
            return None
        return self.rate.learned()

    def limits(self) -> dict[str, float]:
        """The rate (requests/s; inf: none) and concurrency limit in force, and requests in flight."""
        return {"rate": self.rate.current(), "concurrency": self.gate.limit.allowed(), "in_flight": self.gate.in_flight}

    def fail(self, failure: ApiFailure) -> None:
        """The API failed as a whole: every call of this client from now on raises ``failure``."""
        if self.failure is None:
            self.failure = failure

    # -- OAuth2's token ----------------------------------------------------------------------

    async def _exchange_token(self, call: Call) -> Answer:
        """The token endpoint's answer (never billed, never the breaker's business)."""
        async with asyncio.timeout(self.source.client.timeouts.deadline):
            return await self._sender.exchange(call, self.source.client.max_response_bytes)

    def _use_token(self, token: str) -> None:
        """Every call from now on carries ``token`` (what was prepared with the last one is
        prepared again), and no answer or error keeps it."""
        if token == self._bearer:
            return
        self._bearer = token
        self._http.headers["Authorization"] = f"Bearer {token}"
        self._calls = Calls(self._http)
        self._prepare()
        self.redactor = Redactor([*self.redactor.secrets, token])

    def _prepare(self) -> None:
        """Prepare again what was built on the client's default headers (the client's routes)."""

    async def _with_token(self, call: Call) -> Call:
        """``call`` carrying the token in use (fetched again shortly before it expires)."""
        assert self._token is not None
        self._use_token(await self._token.current())
        if call.headers.get("Authorization") == f"Bearer {self._bearer}":
            return call
        headers = CIMultiDict(call.headers)
        headers["Authorization"] = f"Bearer {self._bearer}"
        return Call(call.method, call.url, CIMultiDictProxy(headers), call.body)

    # -- one call ----------------------------------------------------------------------------

    async def _get(
        self, kind: str, call: Call, meter: CallMeter | None = None, conditional: bool = False
    ) -> tuple[Answer, int]:
        """Send with tier 1 retries; the answer (2xx or a conditional 304) and the attempts it
        took.

        The first attempt goes outside tenacity (setting up its loop costs more than the request's
        own bookkeeping); a transient failure is handed to tenacity as its attempt 1, so the
        retries, their waits and their numbering are tenacity's.
        """
        try:
            return await self._send(kind, call, meter, conditional, first=True), 1
        except SourceError as exc:
            if not _is_transient(exc) or self.source.client.retries.max_attempts == 1:
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
                    return await self._send(kind, call, meter, conditional, first=False), attempt_no
        except SourceError as exc:  # the same failure, with the attempts it took (never mutated once raised)
            raise dataclasses.replace(exc, attempts=attempt_no) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, kind: str, call: Call, meter: CallMeter | None, conditional: bool, first: bool) -> Answer:
        """One attempt, until it is answered: 429s are waited out here and never count as the
        resource's fault; a 401 to an OAuth2 token renews it once."""
        spend = self.spend if kind != "listing" else self.listing_spend
        waited, renewed = _Waited(), False
        while True:
            self._admit(kind, call, spend)
            if self._token is not None:
                call = await self._with_token(call)
            answer, error_class, problem = await self._attempt(kind, call, meter, conditional, first, spend)
            if error_class is ErrorClass.THROTTLED:
                await self._wait_out(kind, call, answer, meter, waited)
                continue
            self.throttle.answered()  # an answer that is not a 429: the API serves again
            if error_class is None:
                return answer
            if error_class is ErrorClass.AUTH and self._token is not None and not renewed:
                renewed = True  # the token may have expired early, or been revoked: one new one
                self._use_token(await self._token.renew(refused=call.headers.get("Authorization", "")[7:]))
                continue
            error = self._error(error_class, problem, call, answer, kind=kind)
            if error_class is ErrorClass.AUTH:
                token_set = bool(self.settings.credentials.values())
                self.fail(auth_failure(error, token_set=token_set, setting=self._auth_setting))
                raise self.failure or error
            raise error

    def _admit(self, kind: str, call: Call, spend: SpendLog | None) -> None:
        """Raise when no call may go: the API failed as a whole, it throttled the client's day
        away, or the day's ceiling is spent."""
        if self.failure is not None:
            raise self.failure
        if self.throttle.deferred is not None:
            raise self._error(ErrorClass.DEFERRED, self.throttle.deferred, call, kind=kind)
        if spend is not None and spend.exhausted:
            raise self._error(ErrorClass.SPEND_CEILING, spend.ceiling_message(), call, kind=kind)

    async def _attempt(
        self, kind: str, call: Call, meter: CallMeter | None, conditional: bool, first: bool, spend: SpendLog | None
    ) -> tuple[Answer, ErrorClass | None, str]:
        """The call sent once, in a slot of the concurrency limit, and its answer judged.

        The breaker is asked at the last moment, in the slot (a request that queued while the
        API went down must not be sent after it opened), and hears only a call's first attempt
        and its trials: retries say nothing new about the API, and counting them made a few
        flaky resources look like an outage."""
        gate = self.gate
        if not gate.try_enter():  # awaited only when it must wait: most calls find a place
            await gate.enter()
        try:
            decision = self.breaker.before_call()
            trial = decision.trial if isinstance(decision, Go) else await self._pass_breaker(call, kind)
            failed = going = False
            try:
                wait = self.rate.reserve_nowait()  # most calls wait for nothing: no await then
                if wait is None or wait > 0 or self._paused_until > time.monotonic():
                    await self._wait_turn(wait)
                self._admit(kind, call, None)  # decided while this call waited for its turn
                if spend is not None:
                    try:  # granted before it is sent: it is paid for, and within the ceiling
                        await spend.before_send()
                    except SpendCeilingReached as exc:
                        raise self._error(ErrorClass.SPEND_CEILING, str(exc), call, kind=kind) from None
                going = True
                sent = time.monotonic()
                try:
                    answer = await self._exchange(kind, call, meter)
                except SourceError as exc:
                    failed = exc.error_class is ErrorClass.TRANSIENT
                    raise
                rtt = time.monotonic() - sent
                if answer.status_code in self._usable:
                    error_class, problem = None, ""
                else:
                    error_class, problem = judge(answer, self.source.conditional, conditional, self.source.errors)
                failed = error_class is ErrorClass.TRANSIENT
            finally:
                if (first or trial) and going:  # a call never sent says nothing of the API
                    self.breaker.record(failed, trial)
        finally:
            gate.release()
        self._billed(meter, kind, len(answer.body))
        if error_class is not ErrorClass.THROTTLED and not failed:
            gate.sample(rtt)
        return answer, error_class, problem

    async def _exchange(self, kind: str, call: Call, meter: CallMeter | None) -> Answer:
        """The whole answer, within the deadline and the size cap; what stopped it, as the
        call's error (counted billable when it may have reached the API, not when it never did)."""
        client = self.source.client
        deadline, max_bytes, sender = client.timeouts.deadline, client.max_response_bytes, self._sender
        try:
            if sender.keeps_deadline:
                answer = await sender.exchange(call, max_bytes)
            else:
                async with asyncio.timeout(deadline):
                    answer = await sender.exchange(call, max_bytes)
        except asyncio.CancelledError:  # stopped mid-call: it may well have reached the API
            self._count(meter, kind=kind)
            raise
        except BodyTooLarge as exc:
            self._count(meter, kind=kind, received=exc.size)
            raise self._error(ErrorClass.POISON, str(exc), call, kind=kind) from None
        except UnsupportedEncoding as exc:
            self._count(meter, kind=kind)
            raise self._error(ErrorClass.POISON, str(exc), call, kind=kind) from None
        except TimeoutError:
            self._count(meter, kind=kind)
            message = f"timeout: no whole answer within the {deadline:g}s deadline"
            raise self._error(ErrorClass.TRANSIENT, message, call, kind=kind) from None
        except httpx.LocalProtocolError as exc:  # our own request is malformed: never sent
            self._count(meter, unsent=1)
            raise self._error(ErrorClass.PERMANENT, f"request not sendable: {exc}", call, kind=kind) from None
        except httpx.TransportError as exc:
            if isinstance(exc, UNSENT):
                self._count(meter, unsent=1)  # it never reached the API: not billable
            else:
                self._count(meter, kind=kind)  # sent, so billable (read timeouts included)
            what = "timeout" if isinstance(exc, httpx.TimeoutException) else "transport error"
            raise self._error(ErrorClass.TRANSIENT, f"{what}: {type(exc).__name__}", call, kind=kind) from None
        if self.redactor.secrets:  # a reflected credential is never stored
            answer.body = self.redactor.bytes(answer.body)
        return answer

    async def _wait_out(self, kind: str, call: Call, answer: Answer, meter: CallMeter | None, waited: _Waited) -> None:
        """A 429: every call of the client pauses, for at most the bound. Past the client's
        bounds the rest of its day is deferred; past this call's own, it goes to tier 2 at once
        (tier 1 would only wait it out again)."""
        errors = self.source.errors
        asked = throttle_wait(answer.headers, errors)
        wait = self.throttle.throttled(asked)
        self._count(meter, throttled=1)
        if self.throttle.deferred is not None:
            raise self._error(ErrorClass.DEFERRED, self.throttle.deferred, call, answer, kind=kind)
        waited.times += 1
        waited.seconds += asked
        if waited.seconds > errors.max_throttle_wait or waited.times > errors.max_throttle_attempts:
            raise self._error(
                ErrorClass.THROTTLED,
                f"throttled for too long: {waited.times} 429s asking for {waited.seconds:g}s in all "
                f"(bounds: {errors.max_throttle_attempts} and {errors.max_throttle_wait:g}s)",
                call,
                answer,
                kind=kind,
            )
        self._paused_until = max(self._paused_until, time.monotonic() + wait)
        await self.rate.throttled(wait)

    async def _wait_turn(self, wait: float | None) -> None:
        """Wait for this request's slot of the (shared) rate (``wait``: what reserving it answered;
        None: not reserved yet), and out any pause a 429 set meanwhile (then reserve again). A
        long wait is slept a little at a time: a call that waits must not outlive the client's
        decision to stop calling (a failure of the API, a throttled-out day)."""
        while True:
            if wait is None:
                wait = await self.rate.reserve()
            await self._sleep_unless_stopped(wait)
            if time.monotonic() >= self._paused_until:
                return
            await self._sleep_unless_stopped(self._paused_until - time.monotonic())
            wait = None

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.25))
            if self.failure is not None or self.throttle.deferred is not None:
                return  # the caller checks which, and raises it

    async def _pass_breaker(self, call: Call, kind: str) -> bool:
        """Wait while the breaker holds calls; True when this call is its half-open trial."""
        while True:
            decision = self.breaker.before_call()
            if isinstance(decision, Go):
                return decision.trial
            if isinstance(decision, Reject):
                url = self.redactor.url(call.url)
                raise SourceError(ErrorClass.CIRCUIT_OPEN, decision.reason, url=url, kind=kind)
            await asyncio.sleep(decision.seconds)

    # -- what calls cost, and what a failed one leaves ----------------------------------------

    def _billed(self, meter: CallMeter | None, kind: str, received: int) -> None:
        """An answered call, on the client's meter and the caller's."""
        self.meter.bill(kind, received)
        if meter is not None:
            meter.bill(kind, received)

    def _count(self, meter: CallMeter | None, **counted: Any) -> None:
        self.meter.count(**counted)
        if meter is not None:
            meter.count(**counted)

    def _error(
        self,
        error_class: ErrorClass,
        message: str,
        call: Call,
        answer: Answer | None = None,
        attempts: int = 1,
        kind: str = "",
    ) -> SourceError:
        """``failures.failure``'s SourceError, scrubbed of every secret this client knows."""
        return failure(self.redactor, error_class, message, call, answer, attempts, kind)


class _BuildsOnly(httpx.AsyncBaseTransport):
    """The transport of an httpx client that only builds requests (httpx's default one would
    load the CA bundle for nothing, about 35 ms a client)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("this httpx client builds requests; a sender sends them")


_BUILDS_ONLY = _BuildsOnly()
