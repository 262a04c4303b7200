"""The async HTTP client of the source API: the four kinds of call a declaration describes
(probe, bulk probe, detail, listing), each made on ``calling.Caller`` (admission, the rate, the
breaker, the spending ceiling, tier 1 retries, 429s, the credential's failure).

What it refuses to be fooled by: an id is one percent-encoded path segment, never URL syntax;
a 304 nobody asked for is not an answer (``answers.py``); a bulk answer holding one id twice,
differently, answers nothing for it; a listing is bounded by what it can contain and keeps an
account of every item (``listing_account.py``), and never follows a next page to another host
(the credential would travel there).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from pipelines.core.errors import SourceError
from pipelines.core.meter import CallMeter, Detail, Probe
from pipelines.core.selectors import id_text, select
from pipelines.core.urls import list_query
from pipelines.source import failures
from pipelines.source.answers import retry_after_seconds
from pipelines.source.calling import Caller
from pipelines.source.config import ClientSettings
from pipelines.source.listing_account import ListingAccount, ListingRunaway
from pipelines.source.listing_pages import http_date, page_key, refused_item, stated_total
from pipelines.source.paginators import PAGERS, pager_for
from pipelines.source.records import embedded_detail, without_detail
from pipelines.source.wire import Route

# What callers import from here: the client's settings, meter and answers live beside it.
__all__ = ["CallMeter", "ClientSettings", "Detail", "Probe", "SourceApiClient", "retry_after_seconds"]


class SourceApiClient(Caller):
    """Use as ``async with SourceApiClient(settings) as client:``. Speaks the API as
    ``settings.source`` declares it: paths, auth, where records and ids are, pagination."""

    def _prepare(self) -> None:
        """The routes built on the client's default headers (again when an OAuth2 token changes)."""
        detail = self.source.detail
        self._detail_route = self._calls.route(detail.path, self._query(detail, {}) or None, detail.headers or None)
        self._probe_routes: dict[tuple[str, ...], Route] = {}  # by the fields projected

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
        record = failures.record(self.redactor, "probe", answer, spec.data_selector, self.source.id, (), rid, attempts)
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
        parsed = failures.parsed(self.redactor, "bulk_probe", answer, attempts)
        items = failures.records(self.redactor, "bulk_probe", parsed, spec.data_selector, answer, attempts)
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
        scrub = self.redactor
        if spec.shape == "list":
            body = failures.parsed(scrub, "detail", answer, attempts)
            return Detail(failures.records(scrub, "detail", body, spec.data_selector, answer, attempts), attempts)
        found = failures.record(
            scrub, "detail", answer, spec.data_selector, self.source.id, spec.required, rid, attempts
        )
        return Detail(found, attempts)

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
            offset_paged=PAGERS[spec.paginator.type].by_position,
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
        pager = pager_for(spec.paginator, spec.page_size, spec.page_size_param)
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
                parsed = failures.parsed(self.redactor, "listing", answer, attempts)
                items = failures.records(self.redactor, "listing", parsed, spec.data_selector, answer, attempts)
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
                    account.refuse(*refused_item(item, id_spec.path, id_spec.type))
                elif rid not in page:
                    page[rid] = item
            total = stated_total(spec, parsed, answer.headers)
            account.clock(http_date(answer.headers.get("date")))
            try:
                new = account.page(list(page), total)
                yield [(rid, page[rid]) for rid in new]
                following = pager.after(params, answer.headers, parsed, len(items), total)
                account.last_page(has_next=following is not None)
                if following is None:
                    return
                seen.add(page_key(target, params))
                if following.url is not None:  # relative to the page's own URL (RFC 3986, RFC 8288)
                    url = self._same_origin(httpx.URL(answer.call.url).join(following.url))
                    kept = {k: v for k, v in own.items() if k not in url.params} if spec.keep_params else {}
                    target, params = url.copy_merge_params({**self._params, **kept}), {}
                else:
                    params = following.params or {}
                if page_key(target, params) in seen:
                    raise ListingRunaway(
                        f"{account.where}: the next page does not advance: after {len(seen)} page(s) it "
                        "pointed at a page already served"
                    )
            except (ListingRunaway, ValueError, httpx.InvalidURL) as exc:  # bounds, a total or next URL unusable
                account.stop(
                    self.redactor.text(f"{account.where}: {exc}" if account.where not in str(exc) else str(exc))
                )
                return

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
