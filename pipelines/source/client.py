"""The async HTTP client of the source API.

Every HTTP detail lives here: connection pooling, separate connect and read timeouts, an adaptive
request rate (paced, shared through Redis when configured, cut on ``429 Retry-After`` which
pauses every caller), a concurrency limit that latency moves, and tier 1 retries of transient
errors with capped exponential backoff and jitter (tenacity). A credential travels only where
the declaration puts it (a header, or a query parameter the redactor keeps out of every stored
URL), and never in a log line or an error.

What bounds it, whatever the API does: no call goes out that the day's spending ceiling has not
granted (``spend.py``); a 429 pauses the whole client, floored and bounded, and past its bounds
(a wait longer than the maximum, 429s in a row) defers the rest of the client's day unsent
(``throttle.py``); a listing is bounded by what it can contain and keeps an account of every
item (``listing_account.py``).

What it refuses to be fooled by: an id is one percent-encoded path segment, never URL syntax;
a request has an overall deadline (a server dripping a byte a second passes any read timeout);
a body is capped after decompression; a 304 nobody asked for, or a redirect, is not an answer;
a bulk answer holding one id twice, differently, answers nothing for it; a call that was never
sent is not billed; and a 401/403 is the credential's failure, not the resource's: it stops
every call of the client (``ApiFailure``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pipelines.core.errors import BODY_EXCERPT, ApiFailure, ErrorClass, SourceError, auth_failure
from pipelines.core.meter import CallMeter, Detail, Probe
from pipelines.core.redact import Redactor, url_secrets
from pipelines.core.selectors import id_text, select
from pipelines.core.urls import list_query, strip_userinfo
from pipelines.source.answers import UNSENT, judge, retry_after_seconds, throttle_wait, usable_statuses
from pipelines.source.body import ENCODINGS, BodyTooLarge, UnsupportedEncoding
from pipelines.source.breaker import CircuitBreaker, Go, Reject
from pipelines.source.concurrency import ConcurrencyGate
from pipelines.source.config import ClientSettings
from pipelines.source.declaration import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    OAuth2ClientCredentials,
    OffsetPaginator,
    PageNumberPaginator,
    SourceDeclaration,
)
from pipelines.source.listing_account import ListingAccount, ListingRunaway
from pipelines.source.oauth2 import AccessToken
from pipelines.source.paginators import Pager
from pipelines.source.ratecontrol import INF, GradientLimit, RatePolicy
from pipelines.source.records import embedded_detail, parse_json, validate_record, without_detail
from pipelines.source.senders import AiohttpSender, HttpxSender, Sender
from pipelines.source.shared_rate import LocalRate, RedisRate
from pipelines.source.spend import SpendCeilingReached, SpendLog
from pipelines.source.throttle import ThrottleAccount
from pipelines.source.wire import Answer, Call, Calls, Route

# What callers import from here: the client's settings, meter and answers live beside it.
__all__ = ["CallMeter", "ClientSettings", "Detail", "Probe", "SourceApiClient", "retry_after_seconds"]


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, SourceError) and exc.error_class is ErrorClass.TRANSIENT


def _auth_setting(source: SourceDeclaration) -> str:
    """The variable holding the credential, for a message saying what to check."""
    variables = source.client.auth.variables()
    return variables[-1] if variables else f"{source.name}: client.auth"


def _page_key(target: str | httpx.URL, params: dict[str, str]) -> str:
    return f"{target}?{sorted(params.items())!r}"


def _rate(settings: ClientSettings) -> LocalRate | RedisRate:
    rps = settings.source.rate.requests_per_second
    policy = RatePolicy(ceiling=rps if rps > 0 else INF)
    if settings.rate_limiter_url:
        return RedisRate(settings.rate_limiter_url, f"pipelines:rate:{settings.budget}", policy)
    return LocalRate(policy, start=settings.learned_rate if rps <= 0 else None)


class SourceApiClient:
    """Use as ``async with SourceApiClient(settings) as client:``. Speaks the API as
    ``settings.source`` declares it: paths, auth, where records and ids are, pagination."""

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
        declared = source.client
        credentials = settings.credentials
        headers = {"Accept": "application/json", "Accept-Encoding": ENCODINGS, **declared.headers}
        self._params = dict(declared.params)
        base = httpx.URL(settings.base_url)
        basic: httpx.BasicAuth | None = None
        if isinstance(declared.auth, BearerAuth) and credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        elif isinstance(declared.auth, ApiKeyAuth) and credentials.token:
            if declared.auth.location == "header":
                headers[declared.auth.name] = credentials.token
            else:  # in the query: the redactor keeps it out of every stored or logged URL
                self._params[declared.auth.name] = credentials.token
        elif isinstance(declared.auth, BasicAuth) and credentials.username is not None:
            basic = httpx.BasicAuth(credentials.username, credentials.password or "")
        elif base.userinfo:  # a password in the base URL becomes basic auth; what is logged has none
            basic = httpx.BasicAuth(base.username, base.password)
        if basic is not None:  # a default header like the others, whichever sender sends it
            headers["Authorization"] = _basic_header(basic)
        headers.update({k: v for k, v in credentials.headers.items() if v})  # client.secret_headers
        self._params.update({k: v for k, v in credentials.params.items() if v})  # client.secret_params
        self._token: AccessToken | None = None  # OAuth2: the access token, fetched when the client opens
        self._bearer: str | None = None
        if isinstance(declared.auth, OAuth2ClientCredentials):
            auth = declared.auth
            token_url = (
                auth.token_url
                if not auth.token_url.startswith("/")
                else str(httpx.URL(strip_userinfo(settings.base_url)).join(auth.token_url))
            )
            self._token = AccessToken(
                auth, credentials.username or "", credentials.password or "", token_url, self._exchange_token
            )
        self._auth_setting = _auth_setting(source)
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
        self._detail_route = self._calls.route(
            source.detail.path, self._query(source.detail, {}) or None, source.detail.headers or None
        )
        self._probe_routes: dict[tuple[str, ...], Route] = {}  # by the fields projected
        self._sender: Sender = (
            HttpxSender(self._http)
            if isinstance(transport, httpx.AsyncBaseTransport)
            else transport
            if transport is not None
            else AiohttpSender(
                max_connections=rate.max_concurrency,
                keepalive=timeouts.keepalive,
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                deadline=timeouts.deadline,
                proxy_url=settings.proxy_url,
            )
        )
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

    async def __aenter__(self) -> SourceApiClient:
        if isinstance(self.rate, RedisRate):
            await self.rate.ping()
        if self._token is not None:
            self._use_token(await self._token.current())
        return self

    async def _exchange_token(self, call: Call) -> Answer:
        """The token endpoint's answer (never billed, never the breaker's business)."""
        async with asyncio.timeout(self.source.client.timeouts.deadline):
            return await self._sender.exchange(call, self.source.client.max_response_bytes)

    def _use_token(self, token: str) -> None:
        """Every call from now on carries ``token`` (the routes prepared with the last one are
        prepared again), and no answer or error keeps it."""
        if token == self._bearer:
            return
        self._bearer = token
        self._http.headers["Authorization"] = f"Bearer {token}"
        self._calls = Calls(self._http)
        self._probe_routes.clear()
        detail = self.source.detail
        self._detail_route = self._calls.route(detail.path, self._query(detail, {}) or None, detail.headers or None)
        self.redactor = Redactor([*self.redactor.secrets, token])

    def _with_bearer(self, call: Call) -> Call:
        """``call`` carrying the current token (it was built with an older one)."""
        headers = CIMultiDict(call.headers)
        headers["Authorization"] = f"Bearer {self._bearer}"
        return Call(call.method, call.url, CIMultiDictProxy(headers), call.body)

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

    # -- calls ----------------------------------------------------------------------------

    async def probe(
        self, rid: str, fields: Sequence[str] | None = None, etag: str | None = None, meter: CallMeter | None = None
    ) -> Probe:
        """The cheap first call: the projected fields (the declaration's unless given),
        conditional on ``etag`` when given and the source declares conditional requests."""
        spec, conditional = self.source.probe, self.source.conditional
        fields = tuple(spec.fields if fields is None else fields)
        if (route := self._probe_routes.get(fields)) is None:
            route = self._probe_routes[fields] = self._calls.route(
                spec.path, self._query(spec, self._projection(fields)), spec.headers or None
            )
        sent_conditional = bool(etag and conditional is not None)
        extra = None
        if sent_conditional:
            assert conditional is not None and etag is not None
            extra = {conditional.request_header: etag}
        answer, attempts = await self._get("probe", self._calls.item(route, rid, extra), meter, sent_conditional)
        new_etag = answer.headers.get(conditional.etag_header) if conditional is not None else None
        if sent_conditional and conditional is not None and answer.status_code == conditional.not_modified_status:
            return Probe(None, new_etag or etag, not_modified=True, attempts=attempts)
        record = self._record("probe", answer, spec.data_selector, (), rid, attempts)
        return Probe(record, new_etag, attempts=attempts)

    async def bulk_probe(
        self, rids: Sequence[str], fields: Sequence[str] | None = None, meter: CallMeter | None = None
    ) -> tuple[dict[str, dict], list[str]]:
        """Projected records of up to ``max_ids`` ids in one call, and the ids it calls missing
        (listed at the declared path, or, declared so, every id it left out).

        An id holding the separator cannot be told apart from two ids by the server: the
        caller probes such ids one by one (``bulk_safe``)."""
        spec = self.source.bulk_probe
        if spec is None:
            raise ValueError(f"source {self.source.name!r} declares no bulk probe")
        if len(rids) > spec.max_ids:
            raise ValueError(f"bulk probe takes at most {spec.max_ids} ids, got {len(rids)}")
        unsafe = [rid for rid in rids if not self.bulk_safe(rid)]
        if unsafe:
            raise ValueError(f"ids holding the bulk separator must be probed one by one: {unsafe[:3]!r}")
        fields = self.source.probe.fields if fields is None else fields
        # Items percent-encoded one by one, joined by a literal separator (a separator inside an
        # id would travel as %2C, which some servers split on anyway: such ids go one by one).
        if spec.ids_style == "repeated":  # ?id=1&id=2&id=3: each id its own parameter
            parts = [list_query({spec.ids_param: [rid]}) for rid in rids]
        else:
            parts = [list_query({spec.ids_param: list(rids)}, spec.separator)]
        if (projection := self.source.projection) is not None and fields:
            parts.append(list_query({projection.param: list(fields)}, projection.separator))
        parts += [list_query({k: [v]}) for k, v in self._query(spec, self._embedding("bulk_probe")).items()]
        query = b"&".join(parts).decode("ascii")
        call = self._calls.build("GET", spec.path, query=query, headers=spec.headers or None)
        answer, attempts = await self._get("bulk_probe", call, meter)
        parsed = self._parsed("bulk_probe", answer, attempts)
        items = self._list("bulk_probe", parsed, spec.data_selector, answer, attempts)
        records: dict[str, dict] = {}
        ambiguous: set[str] = set()
        id_spec = self.source.id
        for item in items:
            rid = id_text(select(item, id_spec.path, None), id_spec.type)
            if rid is None or not isinstance(item, dict):
                continue  # an item without a readable id stays unanswered (poison to the caller)
            if rid in records and records[rid] != item:
                ambiguous.add(rid)  # the same id twice, saying different things: no guess
            records[rid] = item
        for rid in ambiguous:  # unanswered: the caller makes it the resource's failure
            del records[rid]
        if spec.missing_selector is None:  # left out means missing; answered twice is not left out
            return records, [rid for rid in rids if rid not in records and rid not in ambiguous]
        missing = select(parsed, spec.missing_selector, [])
        if not isinstance(missing, list):
            missing = []
        return records, [t for m in missing if (t := id_text(m, id_spec.type)) is not None and t not in ambiguous]

    def embedded(self, record: dict, rid: str, kind: str) -> tuple[dict, Any]:
        """``record`` (an answer of ``kind``) without the detail it carries, and that detail when
        the declaration puts it there and it is usable (``records.embedded_detail``)."""
        spec = self.source.detail
        if spec.embedded is None or spec.embedded.carried_by != kind:
            return record, None
        detail, _ = embedded_detail(record, rid, spec, self.source.id)
        return without_detail(record, spec.embedded, self.source.probe.fields), detail

    def _embedding(self, kind: str) -> dict[str, str]:
        """The parameters that ask a ``kind`` call to carry the details, when it is declared to."""
        embedded = self.source.detail.embedded
        return dict(embedded.params) if embedded is not None and embedded.carried_by == kind else {}

    @property
    def id_type(self) -> str:
        return self.source.id.type

    @property
    def bulk_size(self) -> int | None:
        """Ids per bulk probe (None: the source has no bulk probe)."""
        return self.source.bulk_probe.max_ids if self.source.bulk_probe is not None else None

    def bulk_safe(self, rid: str) -> bool:
        spec = self.source.bulk_probe
        return spec is not None and (spec.ids_style == "repeated" or spec.separator not in rid)

    async def detail(self, rid: str, meter: CallMeter | None = None) -> Detail:
        """The expensive second call: the whole resource (an object or a list, as declared)."""
        spec = self.source.detail
        answer, attempts = await self._get("detail", self._calls.item(self._detail_route, rid), meter)
        if spec.shape == "list":
            parsed = self._parsed("detail", answer, attempts)
            return Detail(self._list("detail", parsed, spec.data_selector, answer, attempts), attempts)
        return Detail(self._record("detail", answer, spec.data_selector, spec.required, rid, attempts), attempts)

    async def iter_ids(
        self, meter: CallMeter | None = None, account: ListingAccount | None = None
    ) -> AsyncIterator[list[str]]:
        """Every id the listing serves, a page at a time (pages are yielded, never piled up)."""
        async for page in self.iter_listing(meter=meter, account=account):
            yield [rid for rid, _ in page]

    def listing_account(self) -> ListingAccount:
        """A new account of one walk of the declared listing (``source/listing_account.py``)."""
        spec = self.source.listing
        if spec is None:
            raise ValueError(f"source {self.source.name!r} declares no listing: give it a watchlist CSV")
        return ListingAccount(
            where=f"{self.source.name}: listing {spec.path}",
            page_size=spec.page_size,
            offset_paged=isinstance(spec.paginator, OffsetPaginator | PageNumberPaginator),
            max_pages_without_new=spec.max_pages_without_new,
        )

    async def iter_listing(
        self, changed_since: str | None = None, meter: CallMeter | None = None, account: ListingAccount | None = None
    ) -> AsyncIterator[list[tuple[str, dict]]]:
        """Every (id, item) the listing serves, a page at a time (yielded, never piled up), each id
        once; with ``changed_since``, only the items the API says changed since then (the declared
        filter, sent with the first page and kept by the paginator on every page after it).

        ``account`` (one is made when not given) counts what the pages served and refused, and
        says at the end whether that accounts for every item. A listing past its bounds (pages
        that add no new id, more pages than its stated total allows, a next page already
        served, a next page on another host) stops there: the account says why. A page's
        failure is written in the account and raised (an outage; ``ApiFailure`` stops the run)."""
        spec = self.source.listing
        account = account if account is not None else self.listing_account()
        assert spec is not None  # listing_account refuses a source without one
        pager = Pager(spec.paginator, spec.page_size, spec.page_size_param)
        params = {**pager.first(), **self._query(spec, self._projection(spec.fields)), **self._embedding("listing")}
        if changed_since is not None:
            if spec.changed_since is None:
                raise ValueError(f"source {self.source.name!r} declares no listing.changed_since filter")
            params[spec.changed_since.param] = changed_since
        own = {k: v for k, v in params.items() if k not in pager.first()}  # kept on next-page URLs if declared
        target: str | httpx.URL = spec.path
        seen: set[str] = set()
        id_spec = self.source.id
        while True:
            call = self._calls.build("GET", target, params=params, headers=spec.headers or None)
            try:
                answer, attempts = await self._get("listing", call, meter)
                parsed = self._parsed("listing", answer, attempts)
                items = self._list("listing", parsed, spec.data_selector, answer, attempts)
            except SourceError as exc:
                account.stop(f"page {account.pages + 1} failed ({exc.error_class}: {exc.message})")
                raise
            except asyncio.CancelledError:
                account.stop(f"stopped at page {account.pages + 1}")
                raise
            page: dict[str, dict] = {}
            for item in items:
                rid = id_text(select(item, id_spec.path, None), id_spec.type) if isinstance(item, dict) else None
                if rid is None:
                    account.refuse(*_refused_item(item, id_spec.path, id_spec.type))
                elif rid not in page:
                    page[rid] = item
            total = self._stated_total(parsed, answer.headers)
            account.clock(_http_date(answer.headers.get("date")))
            try:
                new = account.page(list(page), total)
                yield [(rid, page[rid]) for rid in new]
                following = pager.after(params, answer.headers, parsed, len(items), total)
                account.last_page(has_next=following is not None)
                if following is None:
                    return
                seen.add(_page_key(target, params))
                if following.url is not None:  # relative to the page's own URL (RFC 3986, RFC 8288)
                    url = self._same_origin(httpx.URL(answer.call.url).join(following.url))
                    kept = {k: v for k, v in own.items() if k not in url.params} if spec.keep_params else {}
                    target, params = url.copy_merge_params({**self._params, **kept}), {}
                else:
                    params = following.params or {}
                if _page_key(target, params) in seen:
                    raise ListingRunaway(
                        f"{account.where}: the next page does not advance: after {len(seen)} page(s) it "
                        "pointed at a page already served"
                    )
            except (ListingRunaway, ValueError, httpx.InvalidURL) as exc:  # bounds, a total or next URL unusable
                account.stop(
                    self.redactor.text(f"{account.where}: {exc}" if account.where not in str(exc) else str(exc))
                )
                return

    def _stated_total(self, parsed: Any, headers: Mapping[str, str]) -> int | None:
        """How many items the API says the listing holds (its body or a header), if it says."""
        spec = self.source.listing
        assert spec is not None
        path = spec.total_path or getattr(spec.paginator, "total_path", None)
        if isinstance(spec.paginator, PageNumberPaginator) and not spec.total_path:
            path = None  # the page-number paginator's total_path counts pages, not items
        value = select(parsed, path, None) if path else None
        if value is None and spec.total_header:
            value = headers.get(spec.total_header)
        if value is None or isinstance(value, bool):
            return None
        try:
            total = int(str(value).strip())
        except ValueError:
            return None  # a total that is no number states nothing
        return total if total >= 0 else None

    def _same_origin(self, target: httpx.URL) -> httpx.URL:
        base = self._http.base_url
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise ValueError(
                f"the listing's next page is on another host ({target.scheme}://{target.host}): not followed, "
                "the credential would travel there"
            )
        return target

    def _projection(self, fields: Sequence[str]) -> dict[str, str]:
        projection = self.source.projection
        if projection is None or not fields:
            return {}
        return {projection.param: projection.separator.join(fields)}

    def _query(self, endpoint, extra: dict[str, str]) -> dict[str, str]:
        return {**self._params, **endpoint.params, **extra}

    # -- plumbing -------------------------------------------------------------------------

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
        """One attempt; 429s are waited out here and never count as the resource's fault.

        The breaker hears only a call's first attempt (and its trials): its retries say nothing
        new about the API, and counting them made a few flaky resources look like an outage.
        """
        throttled_for, throttles = 0.0, 0
        deadline, max_bytes = self.source.client.timeouts.deadline, self.source.client.max_response_bytes
        gate, sender, rate, throttle = self.gate, self._sender, self.rate, self.throttle
        spend = self.spend if kind != "listing" else self.listing_spend
        renewed = False  # OAuth2: a 401 renews the token once for this call
        while True:
            if self.failure is not None:
                raise self.failure
            if self._token is not None:  # fetched again shortly before it expires
                self._use_token(await self._token.current())
                if call.headers.get("Authorization") != f"Bearer {self._bearer}":
                    call = self._with_bearer(call)
            if throttle.deferred is not None:  # the API throttled the client past its bounds
                raise self._error(ErrorClass.DEFERRED, throttle.deferred, call, kind=kind)
            if spend is not None and spend.exhausted:  # the day's ceiling: nothing more goes out
                raise self._error(ErrorClass.SPEND_CEILING, spend.ceiling_message(), call, kind=kind)
            if not gate.try_enter():  # awaited only when it must wait: most calls find a place
                await gate.enter()
            try:
                # The breaker is asked at the last moment, in the slot: a request that queued
                # for a slot while the API went down must not be sent after the breaker opened.
                decision = self.breaker.before_call()
                trial = decision.trial if isinstance(decision, Go) else await self._pass_breaker(call, kind)
                failed = going = False
                try:
                    wait = rate.reserve_nowait()  # most calls wait for nothing: no await then
                    if wait is None or wait > 0 or self._paused_until > time.monotonic():
                        await self._wait_turn(wait)
                    if self.failure is not None:
                        raise self.failure
                    if throttle.deferred is not None:  # decided while this call waited for its turn
                        raise self._error(ErrorClass.DEFERRED, throttle.deferred, call, kind=kind)
                    if spend is not None:
                        try:  # granted before it is sent: it is paid for, and within the ceiling
                            await spend.before_send()
                        except SpendCeilingReached as exc:
                            raise self._error(ErrorClass.SPEND_CEILING, str(exc), call, kind=kind) from None
                    going = True
                    sent = time.monotonic()
                    try:  # the whole answer, within the deadline and the size cap
                        if sender.keeps_deadline:
                            answer = await sender.exchange(call, max_bytes)
                        else:
                            async with asyncio.timeout(deadline):
                                answer = await sender.exchange(call, max_bytes)
                        if self.redactor.secrets:  # a reflected credential is never stored
                            answer.body = self.redactor.bytes(answer.body)
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
                        failed = True
                        self._count(meter, kind=kind)
                        raise self._error(
                            ErrorClass.TRANSIENT,
                            f"timeout: no whole answer within the {deadline:g}s deadline",
                            call,
                            kind=kind,
                        ) from None
                    except httpx.LocalProtocolError as exc:  # our own request is malformed: never sent
                        self._count(meter, unsent=1)
                        raise self._error(
                            ErrorClass.PERMANENT, f"request not sendable: {exc}", call, kind=kind
                        ) from None
                    except httpx.TransportError as exc:
                        failed = True
                        if isinstance(exc, UNSENT):
                            self._count(meter, unsent=1)  # it never reached the API: not billable
                        else:
                            self._count(meter, kind=kind)  # sent, so billable (read timeouts included)
                        what = "timeout" if isinstance(exc, httpx.TimeoutException) else "transport error"
                        raise self._error(
                            ErrorClass.TRANSIENT, f"{what}: {type(exc).__name__}", call, kind=kind
                        ) from None
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
            if error_class is None:
                throttle.answered()
                return answer
            if error_class is ErrorClass.THROTTLED:
                s = self.source.errors
                asked = throttle_wait(answer.headers, s)
                wait = throttle.throttled(asked)  # every call of the client pauses, for at most the bound
                self._count(meter, throttled=1)
                if throttle.deferred is not None:
                    raise self._error(ErrorClass.DEFERRED, throttle.deferred, call, answer, kind=kind)
                throttled_for += asked
                throttles += 1
                if throttled_for > s.max_throttle_wait or throttles > s.max_throttle_attempts:
                    raise self._error(  # to tier 2 at once: tier 1 would only wait it out again
                        ErrorClass.THROTTLED,
                        f"throttled for too long: {throttles} 429s asking for {throttled_for:g}s in all "
                        f"(bounds: {s.max_throttle_attempts} and {s.max_throttle_wait:g}s)",
                        call,
                        answer,
                        kind=kind,
                    )
                self._paused_until = max(self._paused_until, time.monotonic() + wait)
                await self.rate.throttled(wait)
                continue
            throttle.answered()  # an answer that is not a 429: the API serves again
            if error_class is ErrorClass.AUTH and self._token is not None and not renewed:
                renewed = True  # the token may have expired early, or been revoked: one new one
                self._use_token(await self._token.renew(refused=call.headers.get("Authorization", "")[7:]))
                continue
            error = self._error(error_class, problem, call, answer, kind=kind)
            if error_class is ErrorClass.AUTH:
                self.fail(
                    auth_failure(error, token_set=bool(self.settings.credentials.values()), setting=self._auth_setting)
                )
                self._raise_failure()
            raise error

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

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

    def _billed(self, meter: CallMeter | None, kind: str, received: int) -> None:
        """An answered call (``_count``'s common case, on every call: kept to the bare additions)."""
        own = self.meter
        own.calls[kind] += 1
        own.bytes_received += received
        if meter is not None:
            meter.calls[kind] += 1
            meter.bytes_received += received

    def _count(
        self,
        meter: CallMeter | None,
        kind: str | None = None,
        received: int = 0,
        throttled: int = 0,
        retries: int = 0,
        unsent: int = 0,
    ) -> None:
        for m in (self.meter, meter) if meter is not None else (self.meter,):
            if kind:
                m.calls[kind] += 1
            m.bytes_received += received
            m.throttled += throttled
            m.retries += retries
            m.unsent += unsent

    def _record(
        self, kind: str, answer: Answer, selector: str, required: Sequence[str], rid: str, attempts: int
    ) -> dict:
        try:
            parsed = parse_json(answer.body)
            return validate_record(select(parsed, selector, None), self.source.id, required, expected_id=rid)
        except SourceError as exc:
            raise self._error(exc.error_class, exc.message, answer.call, answer, attempts, kind) from None

    def _list(self, kind: str, parsed: Any, selector: str, answer: Answer, attempts: int) -> list:
        """The list of records at ``selector``; anything else is poison."""
        found = select(parsed, selector, None)
        if not isinstance(found, list):
            message = f"body fails the schema: no list of records at {selector or 'the top'}"
            raise self._error(ErrorClass.POISON, message, answer.call, answer, attempts, kind)
        return found

    def _parsed(self, kind: str, answer: Answer, attempts: int) -> Any:
        try:
            return parse_json(answer.body)
        except SourceError as exc:
            raise self._error(exc.error_class, exc.message, answer.call, answer, attempts, kind) from None

    def _error(
        self,
        error_class: ErrorClass,
        message: str,
        call: Call,
        answer: Answer | None = None,
        attempts: int = 1,
        kind: str = "",
    ) -> SourceError:
        """What the dead letter keeps of a failed call: scrubbed of every secret the client knows
        (a reflected token, a password in a URL), the body cut after scrubbing; headers as httpx
        reads them (names lower-cased, a repeated one's values joined)."""
        scrub = self.redactor
        body = answer.body if answer is not None else b""
        excerpt = scrub.text(body[: BODY_EXCERPT + 4096].decode("utf-8", "replace"))[:BODY_EXCERPT]
        return SourceError(
            error_class=error_class,
            message=scrub.text(message),
            method=call.method,
            url=scrub.url(call.url),
            status=answer.status_code if answer is not None else None,
            request_headers=scrub.headers(httpx.Headers(list(call.headers.items()))),
            headers=scrub.headers(httpx.Headers(list(answer.headers.items()))) if answer is not None else {},
            body_excerpt=excerpt,
            attempts=attempts,
            kind=kind,
        )


class _BuildsOnly(httpx.AsyncBaseTransport):
    """The transport of an httpx client that only builds requests (httpx's default one would
    load the CA bundle for nothing, about 35 ms a client)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("this httpx client builds requests; a sender sends them")


_BUILDS_ONLY = _BuildsOnly()


def _basic_header(auth: httpx.BasicAuth) -> str:
    """The Authorization header httpx's BasicAuth would add, encoded as httpx encodes it."""
    request = httpx.Request("GET", "http://localhost/")
    return next(auth.auth_flow(request)).headers["Authorization"]


def _refused_item(item: Any, path: str, id_type: str) -> tuple[str, str]:
    """How a listing item without a usable id is named in the account: its id value as served
    (cut short), and what is wrong with it."""
    if not isinstance(item, dict):
        return repr(item)[:80], f"is not an object but {type(item).__name__}"
    value = select(item, path, None)
    shown = repr(value)[:80]
    if value is None:
        return repr(item)[:80], f"has no id at {path or 'the top'}"
    return shown, f"is not a{'n' if id_type == 'integer' else ''} {id_type} id (at {path}: {type(value).__name__})"


def _http_date(value: str | None) -> float | None:
    """An HTTP date (a ``Date`` header) as epoch seconds, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
