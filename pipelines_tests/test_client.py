"""The HTTP client against the sample API on a real loopback port."""

import asyncio
import time

import pytest

from pipelines.core.errors import ApiFailure, ErrorClass, SourceError
from pipelines.sample_api import SampleApiConfig, World
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines_tests.helpers import client_settings

FIELDS = ["id", "version", "updated_at"]


def run(coro):
    return asyncio.run(coro)


async def probe_many(settings: ClientSettings, ids, **kw):
    async with SourceApiClient(settings) as client:

        async def one(rid):
            try:
                return await client.probe(rid, FIELDS, **kw)
            except (SourceError, ApiFailure) as exc:
                return exc

        return await asyncio.gather(*(one(r) for r in ids)), client.meter


def test_transient_errors_are_retried_and_every_call_is_counted(sample_server):
    server = sample_server(resources=300, transient_rate=0.3, seed=5)
    settings = client_settings(
        server.url,
        {"client.retries.max_attempts": 6, "client.retries.backoff_initial": 0.01, "client.retries.backoff_max": 0.05},
    )
    answers, meter = run(probe_many(settings, [f"r{i:07d}" for i in range(300)]))
    failures = [a for a in answers if isinstance(a, SourceError)]
    assert len(failures) <= 3  # 0.3 ** 6 per sub-job
    assert all(f.error_class is ErrorClass.TRANSIENT and f.attempts == 6 for f in failures)
    stats = server.stats()
    assert meter.total == stats["billable"]  # the client's count of billable calls is the server's
    assert meter.retries == stats["transient"] - len(failures)


def test_429_is_waited_out_and_never_fails_a_sub_job(sample_server):
    server = sample_server(resources=100, rate_limit=20)
    settings = client_settings(server.url, {"rate.max_concurrency": 10})
    started = time.perf_counter()
    answers, meter = run(probe_many(settings, [f"r{i:07d}" for i in range(60)]))
    elapsed = time.perf_counter() - started
    assert not [a for a in answers if isinstance(a, SourceError)]
    assert meter.throttled == server.stats()["throttled"] > 0
    assert elapsed >= 1.5  # 60 requests at 20/s after a 20-request burst


def test_a_client_rate_avoids_429_altogether(sample_server):
    server = sample_server(resources=100, rate_limit=40)
    settings = client_settings(server.url, {"rate.max_concurrency": 10, "rate.requests_per_second": 30})
    answers, meter = run(probe_many(settings, [f"r{i:07d}" for i in range(60)]))
    assert all(not isinstance(a, SourceError) for a in answers)
    assert meter.throttled == server.stats().get("throttled", 0) == 0


def test_at_the_server_no_sliding_second_holds_more_than_the_rate_and_its_jitter(sample_server):
    """What docs/settings.md promises for R, measured where the API counts: the busiest one-second
    window (sliding, not aligned to the clock) of arrivals at a loopback server."""
    server = sample_server(resources=300)
    settings = client_settings(server.url, {"rate.max_concurrency": 16, "rate.requests_per_second": 50})
    answers, _ = run(probe_many(settings, [f"r{i:07d}" for i in range(200)]))
    assert not [a for a in answers if isinstance(a, SourceError)]
    peak = server.peak_1s()
    assert 45 <= peak <= 50 + 3, peak  # R, and a request or two of arrival jitter


def test_the_busiest_window_slides():
    from pipelines.sample_api.counters import Counters

    counters = Counters()
    counters._times = [0.0, 0.5, 0.9, 1.2, 1.3, 1.4, 2.5, 3.6]  # aligned seconds hold 3 and 3; [0.5, 1.5) holds 5
    assert counters.peak() == 5 and counters.peak(window=0.15) == 2 and counters.peak(window=10) == 8


def test_timeouts_are_transient_after_the_retry_budget(sample_server):
    server = sample_server(resources=5, timeout_rate=1.0, timeout_seconds=3)
    settings = client_settings(
        server.url,
        {"client.timeouts.read": 0.2, "client.retries.max_attempts": 2, "client.retries.backoff_initial": 0.01},
    )
    (answer,), meter = run(probe_many(settings, ["r0000001"]))
    assert isinstance(answer, SourceError) and answer.error_class is ErrorClass.TRANSIENT
    assert "timeout" in answer.message and answer.attempts == 2
    assert meter.total == 2


def test_the_token_authenticates_and_never_leaks(sample_server):
    server = sample_server(resources=5, token="tok-very-secret")
    good = client_settings(server.url, token="tok-very-secret")
    (ok,), _ = run(probe_many(good, ["r0000001"]))
    assert ok.record["id"] == "r0000001"
    server.reset()
    denied, _ = run(
        probe_many(
            client_settings(server.url, {"rate.max_concurrency": 1, "rate.min_concurrency": 1}, token="wrong-token"),
            ["r0000001", "r0000002"],
        )
    )
    # the credential's failure, not the resources': the API failed as a whole, naming the setting
    assert all(isinstance(d, ApiFailure) and d.kind == "auth_failed" for d in denied)
    assert denied[0].settings == ("SOURCE_API_TOKEN",) and denied[0].evidence.status == 401
    assert server.stats()["probe"] == 1  # after the first 401 no call was sent
    evidence = denied[0].evidence
    text = " ".join(
        [str(denied[0]), evidence.url, repr(evidence.headers), repr(evidence.request_headers), evidence.body_excerpt]
    )
    assert "wrong-token" not in text and "tok-very-secret" not in text


def test_gone_poison_and_malformed_are_told_apart(sample_server):
    config = SampleApiConfig(resources=400, gone_rate=0.05, poison_rate=0.1, malformed_rate=0.1, seed=2, day=1)
    server = sample_server(
        **{k: getattr(config, k) for k in ("resources", "gone_rate", "poison_rate", "malformed_rate", "seed", "day")}
    )
    world = World(config)
    ids = [f"r{i:07d}" for i in range(400)]
    gone = next(r for r in ids if not world.exists(r))
    poison = next(r for r in ids if world.exists(r) and world.is_poison(r) and not world.is_malformed(r))
    malformed = next(r for r in ids if world.exists(r) and world.is_malformed(r))

    async def go():
        async with SourceApiClient(client_settings(server.url)) as client:
            out = []
            for call in (
                client.probe(gone, FIELDS),
                client.detail(poison),
                client.detail(malformed),
            ):
                with pytest.raises(SourceError) as info:
                    await call
                out.append(info.value)
            return out

    gone_err, poison_err, malformed_err = run(go())
    assert gone_err.error_class is ErrorClass.GONE and gone_err.status == 410
    assert poison_err.error_class is ErrorClass.POISON and "schema" in poison_err.message
    assert malformed_err.error_class is ErrorClass.POISON and "not JSON" in malformed_err.message
    assert malformed_err.body_excerpt.startswith('{"id"')


def test_listing_and_bulk_probe(sample_server):
    server = sample_server(resources=1100)

    async def go():
        async with SourceApiClient(client_settings(server.url)) as client:
            pages = [page async for page in client.iter_ids()]
            found, missing = await client.bulk_probe(["r0000001", "r0000002", "zzz"], ["id", "version"])
            with pytest.raises(ValueError, match="at most 100"):
                await client.bulk_probe([f"r{i:07d}" for i in range(101)], ["id"])
            return pages, found, missing

    pages, found, missing = run(go())
    assert [len(p) for p in pages] == [500, 500, 100]
    assert set(found) == {"r0000001", "r0000002"} and missing == ["zzz"]
    assert server.stats()["listing"] == 3


def test_not_told_the_rate_the_client_finds_it_from_429s(sample_server):
    server = sample_server(resources=400, rate_limit=50, latency_ms=5)
    settings = client_settings(server.url, {"rate.max_concurrency": 8})  # no rate.requests_per_second at all
    answers, meter = run(probe_many(settings, [f"r{i:07d}" for i in range(400)]))
    assert not [a for a in answers if isinstance(a, SourceError)]
    stats = server.stats()
    assert meter.throttled == stats["throttled"]
    assert stats["throttled"] <= 0.05 * stats["billable"]  # a few events, not a 429 storm


def test_two_clients_sharing_a_redis_budget_stay_within_the_apis_rate(sample_server):
    server = sample_server(resources=200, rate_limit=40)
    key = f"pipelines-test:{time.time_ns()}"
    settings = client_settings(
        server.url,
        {"rate.max_concurrency": 8, "rate.requests_per_second": 40, "rate.budget": key},
        rate_limiter_url="redis://127.0.0.1:6379/0",
    )

    async def both():
        ids = [f"r{i:07d}" for i in range(100)]
        return await asyncio.gather(probe_many(settings, ids[:50]), probe_many(settings, ids[50:]))

    started = time.perf_counter()
    (first, _), (second, _) = run(both())
    elapsed = time.perf_counter() - started
    assert not [a for a in first + second if isinstance(a, SourceError)]
    assert server.stats().get("throttled", 0) == 0  # alone each would send 40/s: together 80/s
    assert elapsed >= 100 / 40 - 0.5  # one paced stream of 100 requests at 40/s
