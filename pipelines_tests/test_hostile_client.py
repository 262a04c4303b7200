"""The client against an API that misbehaves, over real loopback HTTP (``hostile_api.py``)."""

import asyncio
import dataclasses
import socket
import threading
import time
import tracemalloc
from urllib.parse import quote

import pytest

from pipelines.core.errors import ApiFailure, ErrorClass, SourceError
from pipelines.sample_api.process import free_port
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines_tests.helpers import client_settings
from pipelines_tests.hostile_api import HostileApi, raw_segment_of

FIELDS = ["id", "version", "updated_at"]


@pytest.fixture
def api():
    server = HostileApi()
    yield server
    server.close()


def call(settings: ClientSettings, fn):
    """Run ``fn(client)`` on a fresh client; its answer (or the error it raised) and the meter."""

    async def go():
        async with SourceApiClient(settings) as client:
            try:
                return await fn(client), client.meter
            except (SourceError, ApiFailure) as exc:
                return exc, client.meter

    return asyncio.run(go())


HOSTILE_IDS = [
    "a/b",
    "x/details",  # another resource's expensive detail call, if the slash were syntax
    "q?fields=secret,all",
    "hash#frag",
    "pct%41",
    ".",
    "..",
    "../admin",
    "sp ace",
    "plus+sign",
    "ünïcödé",
    "semi;colon",
    "NA",
    "null",
]


def test_ids_are_one_percent_encoded_path_segment(api):
    settings = client_settings(api.url, {"rate.max_concurrency": 4})

    async def fetch_all(client):
        out = {}
        for rid in HOSTILE_IDS:
            probe = await client.probe(rid, FIELDS)
            detail = await client.detail(rid)
            out[rid] = (probe.record["id"], detail.record["id"])
        return out

    answers, meter = call(settings, fetch_all)
    assert answers == {rid: (rid, rid) for rid in HOSTILE_IDS}  # the server read each id back whole
    targets = api.targets()
    assert len(targets) == meter.total == 2 * len(HOSTILE_IDS)  # one probe, one detail each: nothing else
    for rid in HOSTILE_IDS:
        encoded = quote(rid, safe="").replace(".", "%2E") if rid.strip(".") == "" else quote(rid, safe="")
        assert f"/items/{encoded}?fields=id%2Cversion%2Cupdated_at" in targets
        assert f"/items/{encoded}/details" in targets
    assert all(t.count("/") <= 3 and "#" not in t for t in targets)
    assert {raw_segment_of(t) for t in targets} == {
        quote(r, safe="") if r.strip(".") else r.replace(".", "%2E") for r in HOSTILE_IDS
    }


def test_every_header_goes_once_as_declared_and_none_of_the_transports_own(api):
    """Calls are built once per endpoint and handed to aiohttp as they are: the declared headers
    (the client's, an endpoint's over them, a conditional probe's ETag) each go exactly once, and
    aiohttp adds only Host, never a User-Agent or Accept of its own."""
    base = client_settings(api.url, token="tok-headers-1")
    source = base.source
    source = source.model_copy(
        update={
            "client": source.client.model_copy(update={"headers": {"User-Agent": "acme-sync/2.1", "X-Team": "data"}}),
            "detail": source.detail.model_copy(update={"headers": {"x-team": "data-detail", "X-Detail": "1"}}),
        }
    )
    settings = dataclasses.replace(base, source=source)

    async def calls(client):
        await client.detail("a/b")
        await client.probe("r1", FIELDS)
        await client.probe("r1", FIELDS, etag='"v7"')
        return None

    call(settings, calls)
    sent = [{k.lower(): v for k, v in seen.raw_headers} for seen in api.seen]
    for seen, headers in zip(api.seen, sent, strict=True):
        assert len(headers) == len(seen.raw_headers), seen.raw_headers  # nothing twice
        assert headers["user-agent"] == "acme-sync/2.1"
        assert headers["accept"] == "application/json" and headers["accept-encoding"] == "gzip, deflate"
        assert headers["authorization"] == "Bearer tok-headers-1"
    detail, probe, conditional = sent
    assert set(detail) == {"host", "connection", "user-agent", "accept", "accept-encoding", "authorization"} | {
        "x-team",
        "x-detail",
    }
    assert detail["x-team"] == "data-detail" and detail["x-detail"] == "1"
    assert probe["x-team"] == "data" and "if-none-match" not in probe and "x-detail" not in probe
    assert conditional["if-none-match"] == '"v7"' and conditional["x-team"] == "data"


def test_an_id_holding_the_bulk_separator_is_refused_by_bulk_probe(api):
    settings = client_settings(api.url)
    with pytest.raises(ValueError, match="one by one"):
        asyncio.run(SourceApiClient(settings).bulk_probe(["ok", "a,b"], FIELDS))
    found, meter = call(settings, lambda c: c.bulk_probe(["ok", "x/y"], FIELDS))
    assert set(found[0]) == {"ok", "x/y"} and meter.total == 1
    assert api.targets() == ["/items?ids=ok,x%2Fy&fields=id,version,updated_at"]


@pytest.mark.parametrize("retry_after", ["0", "-5", "NaN", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
def test_a_retry_after_of_nothing_has_a_floor_and_a_bound(api, retry_after):
    api.mode.retry_after = retry_after
    settings = client_settings(
        api.url, {"errors.min_throttle_wait": 0.05, "errors.max_throttle_attempts": 3, "rate.requests_per_second": 1000}
    )
    started = time.monotonic()
    error, meter = call(settings, lambda c: c.probe("r1", FIELDS))
    elapsed = time.monotonic() - started
    assert isinstance(error, SourceError) and error.error_class is ErrorClass.THROTTLED  # tier 2, not a loop
    assert "throttled for too long" in error.message
    assert len(api.targets()) == meter.total == meter.throttled == 4  # 3 waited out, the 4th ends it
    assert elapsed >= 3 * 0.05


def test_an_endless_retry_after_defers_the_clients_day_at_once(api):
    api.mode.retry_after = "100000"
    settings = client_settings(api.url, {"errors.max_throttle_wait": 600})
    started = time.monotonic()
    error, meter = call(settings, lambda c: c.probe("r1", FIELDS))
    assert error.error_class is ErrorClass.DEFERRED and meter.total == 1  # tier 2, free; the client stops
    assert "longer than errors.max_throttle_wait" in error.message
    assert time.monotonic() - started < 5


def test_a_dripping_server_meets_the_deadline(api):
    api.mode.drip_seconds = 0.2  # each byte arrives well within the read timeout
    settings = client_settings(
        api.url,
        {
            "client.timeouts.read": 1.0,
            "client.timeouts.deadline": 1.5,
            "client.retries.max_attempts": 2,
            "client.retries.backoff_initial": 0.01,
        },
    )
    started = time.monotonic()
    error, meter = call(settings, lambda c: c.detail("r1"))
    elapsed = time.monotonic() - started
    assert error.error_class is ErrorClass.TRANSIENT and "deadline" in error.message and error.attempts == 2
    assert meter.total == 2  # sent, so billable
    assert elapsed < 2 * 1.5 + 1.5  # two deadlines and a backoff, not a byte a second for ever


def test_a_gzip_bomb_is_cut_at_the_cap_after_decompression(api):
    api.mode.gzip_bomb_mb = 200  # 204 KB on the wire, 200 MB inflated
    settings = client_settings(api.url, {"client.max_response_bytes": 1 << 20})
    tracemalloc.start()
    try:
        error, meter = call(settings, lambda c: c.detail("r1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.error_class is ErrorClass.POISON and "larger than 1,048,576 bytes" in error.message
    assert meter.total == 1 and meter.bytes_received <= (1 << 20) + 1
    assert peak < 30 << 20, f"decompressing the bomb took {peak >> 20} MB"


def test_a_304_nobody_asked_for_is_not_an_answer(api):
    api.mode.not_modified = True
    settings = client_settings(api.url)
    error, _ = call(settings, lambda c: c.probe("r1", FIELDS))  # no If-None-Match sent
    assert error.error_class is ErrorClass.POISON and "304" in error.message
    answer, _ = call(settings, lambda c: c.probe("r1", FIELDS, etag='"1"'))
    assert answer.not_modified  # asked for, it is the answer


def test_a_redirect_with_a_body_is_not_an_answer(api):
    api.mode.redirect = True
    error, _ = call(client_settings(api.url), lambda c: c.detail("r1"))
    assert error.error_class is ErrorClass.PERMANENT and "redirects are not followed" in error.message
    assert error.status == 302


def test_a_listing_paged_by_a_cursor_in_a_header_is_walked_whole(api):
    api.mode.listing = [f"r{i}" for i in range(12)]
    api.mode.listing_style = "header_cursor"
    settings = client_settings(api.url, {"listing.page_size": 5, "listing.paginator": {"type": "header_cursor"}})

    async def pages(client):
        account = client.listing_account()
        return [page async for page in client.iter_ids(account=account)], account

    (served, account), meter = call(settings, pages)
    assert [len(page) for page in served] == [5, 5, 2] and meter.total == 3
    assert sum(served, []) == api.mode.listing and account.complete
    assert [t.split("?")[1] for t in api.targets()] == [
        "limit=5&fields=id",
        "limit=5&fields=id&cursor=5",
        "limit=5&fields=id&cursor=10",
    ]


def test_a_listing_whose_cursor_does_not_advance_stops_incomplete(api):
    api.mode.listing = [f"r{i}" for i in range(10)]
    api.mode.cursor_loop = True

    async def pages(client):
        account = client.listing_account()
        return [page async for page in client.iter_ids(account=account)], account

    (pages_served, account), meter = call(client_settings(api.url, {"listing.page_size": 5}), pages)
    assert meter.total == 2  # cursor "" served "1", and "1" served "1" again: detected there
    assert pages_served == [["r0", "r1", "r2", "r3", "r4"], ["r5"]]  # each id once
    assert not account.complete and "the next page does not advance" in account.verdict()


def test_calls_never_sent_are_not_billable():
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: every connect is refused
    settings = client_settings(closed, {"client.retries.max_attempts": 3, "client.retries.backoff_initial": 0.01})
    error, meter = call(settings, lambda c: c.probe("r1", FIELDS))
    assert error.error_class is ErrorClass.TRANSIENT and error.attempts == 3
    assert meter.total == 0 and meter.unsent == 3


def test_a_server_that_hangs_up_after_reading_the_request_is_billed_and_transient():
    """The other side of the line: a request the API read and dropped without an answer may be
    billed, so it is counted (never as unsent), and it is transient (tier 1 tries again)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        listener.settimeout(10)
        for _ in range(2):
            conn, _ = listener.accept()
            received.append(conn.recv(65536))  # the whole request line and headers
            conn.close()  # and no answer

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        settings = client_settings(
            f"http://127.0.0.1:{port}", {"client.retries.max_attempts": 2, "client.retries.backoff_initial": 0.01}
        )
        error, meter = call(settings, lambda c: c.probe("r1", FIELDS))
    finally:
        thread.join(timeout=10)
        listener.close()
    assert len(received) == 2 and all(r.startswith(b"GET /items/r1?fields=") for r in received)
    assert isinstance(error, SourceError) and error.error_class is ErrorClass.TRANSIENT and error.attempts == 2
    assert meter.total == 2 and meter.unsent == 0


@pytest.mark.parametrize("credential", ["bearer", "basic"])
def test_a_reflecting_api_never_gets_a_secret_into_an_error(api, credential):
    api.mode.reflect = True
    api.mode.status = 500
    token, password = "tok-REFLECTED-9f8e7d", "pw-in-the-url-5566"
    if credential == "bearer":
        settings = client_settings(api.url, {"client.retries.max_attempts": 1}, token=token)
        secrets = [token]
    else:  # a password in the URL: sent as basic auth, never kept in a URL
        settings = client_settings(
            api.url.replace("http://", f"http://svc:{password}@"), {"client.retries.max_attempts": 1}
        )
        secrets = [password, "svc:", "c3ZjOnB3LWluLXRoZS11cmwtNTU2Ng=="]  # base64 of svc:password
    error, _ = call(settings, lambda c: c.detail("r1"))
    assert error.error_class is ErrorClass.TRANSIENT
    sent = api.seen[-1].headers["Authorization"]
    assert any(s in sent for s in secrets)  # the API did get the credential, and echoed it back
    assert "[redacted]" in error.body_excerpt
    stored = " ".join([str(error), error.url, repr(error.headers), repr(error.request_headers), error.body_excerpt])
    for secret in secrets:
        assert secret not in stored, secret


def test_a_bulk_answer_holding_an_id_twice_is_that_resources_failure_not_a_guess(api):
    """The same id twice with different versions: no record is chosen, nor is it taken as
    missing; the same id twice saying the same thing is one answer."""
    api.mode.bulk_twice = {"r2": 99, "r3": 1}  # r2 again at another version; r3 again, the same
    settings = client_settings(api.url, {"probe.strategy": "bulk"})
    (records, missing), _ = call(settings, lambda c: c.bulk_probe(["r1", "r2", "r3"], FIELDS))
    assert set(records) == {"r1", "r3"} and missing == []

    from pipelines.core.fingerprint import fingerprint
    from pipelines.core.meter import CallMeter
    from pipelines.core.outcomes import StoredState
    from pipelines.core.sync_batch import ProbeStrategy, sync_batch

    async def batch(client):
        stored = {rid: StoredState(fingerprint({"version": 1}, ["version"])) for rid in ("r1", "r2", "r3")}
        return await sync_batch(
            client,
            ["r1", "r2", "r3"],
            stored,
            strategy=ProbeStrategy.BULK,
            probe_fields=FIELDS,
            fingerprint_fields=["version"],
            meter=CallMeter(),
        )

    result, _ = call(settings, batch)
    by_id = {r.resource_id: r for r in result.results}
    assert by_id["r2"].error_class == "poison" and "served twice saying different things" in by_id["r2"].reason
    assert by_id["r1"].outcome.value == by_id["r3"].outcome.value == "unchanged"
