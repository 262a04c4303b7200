"""Each knob of the sample API does what it says, and its counters are exact."""

import asyncio
import time

import httpx
import pytest

from pipelines.sample_api import SampleApiConfig, World, create_app
from pipelines.sample_api.__main__ import parse_args
from pipelines.sample_api.world import project


def call(config: SampleApiConfig, requests, token: str | None = None):
    """Run ``requests(client)`` against an in-process app; answer (result, counters)."""
    app = create_app(config)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sample", headers=headers) as client:
            return await requests(client)

    return asyncio.run(go()), app.state.api.counters.snapshot()


def test_projection_returns_only_requested_fields_and_an_etag():
    async def go(c):
        small = await c.get("/items/r0000003", params={"fields": "id,version"})
        full = await c.get("/items/r0000003")
        return small, full

    (small, full), counters = call(SampleApiConfig(resources=10), go)
    assert small.json() == {"id": "r0000003", "version": small.json()["version"]}
    assert small.headers["etag"] == f'"{small.json()["version"]}"'
    assert {"name", "description", "attributes"} <= set(full.json())
    assert len(full.content) > 10 * len(small.content)
    assert counters["probe"] == 2 and counters["probe_full"] == 1 and counters["billable"] == 2
    assert counters["detail"] == counters["bulk_probe"] == counters["listing"] == 0  # never called: 0, not absent
    assert counters["unauthorized"] == counters["throttled"] == counters["transient"] == 0


@pytest.mark.parametrize("conditional", [True, False])
def test_conditional_requests_answer_304_only_when_enabled(conditional):
    async def go(c):
        first = await c.get("/items/r0000001", params={"fields": "id"})
        return await c.get("/items/r0000001", params={"fields": "id"}, headers={"If-None-Match": first.headers["etag"]})

    second, counters = call(SampleApiConfig(resources=5, conditional=conditional), go)
    assert second.status_code == (304 if conditional else 200)
    assert counters.get("not_modified", 0) == (1 if conditional else 0)


def test_bulk_probe_reports_missing_ids_and_caps_the_batch():
    config = SampleApiConfig(resources=5)

    async def go(c):
        ok = await c.get("/items", params={"ids": "r0000000,r0000004,r0000009,nope", "fields": "id,version"})
        too_many = await c.get("/items", params={"ids": ",".join(f"r{i:07d}" for i in range(101))})
        return ok, too_many

    (ok, too_many), counters = call(config, go)
    assert [i["id"] for i in ok.json()["items"]] == ["r0000000", "r0000004"]
    assert ok.json()["missing"] == ["r0000009", "nope"]
    assert too_many.status_code == 400
    assert counters["bulk_probe"] == 2


def test_bulk_probe_can_be_switched_off():
    reply, _ = call(
        SampleApiConfig(resources=5, bulk_probe=False), lambda c: c.get("/items", params={"ids": "r0000000"})
    )
    assert reply.status_code == 400
    assert "not supported" in reply.json()["error"]


def test_listing_pages_through_every_live_id():
    config = SampleApiConfig(resources=1234, gone_rate=0.01, day=3)

    async def go(c):
        ids, cursor = [], ""
        while cursor is not None:
            page = (await c.get("/items", params={"cursor": cursor, "limit": 500})).json()
            ids += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
        return ids

    ids, counters = call(config, go)
    assert ids == World(config).ids()
    assert len(ids) < 1234  # some were deleted by day 3
    assert counters["listing"] == 3


@pytest.mark.parametrize(
    "fields",
    [["id"], ["id", "id"], ["id", "version"], ["version", "id"], ["updated_at", "id"], ["id", "name"], [], None],
)
def test_a_projection_is_the_records_whichever_fields_are_asked_for(fields):
    world = World(SampleApiConfig(resources=50, day=4))
    for rid in ("r0000000", "r0000031"):
        assert world.projected(rid, fields) == project(world.record(rid), fields)


def test_auth_is_enforced_when_a_token_is_set():
    config = SampleApiConfig(resources=3, token="s3cret")
    denied, counters = call(config, lambda c: c.get("/items/r0000000"))
    allowed, _ = call(config, lambda c: c.get("/items/r0000000"), token="s3cret")
    assert denied.status_code == 401 and counters["unauthorized"] == 1
    assert allowed.status_code == 200


def test_data_is_deterministic_and_changes_at_the_configured_rate():
    config = SampleApiConfig(resources=20_000, change_rate=0.2, seed=3, day=5)
    world, again = World(config), World(SampleApiConfig(resources=20_000, change_rate=0.2, seed=3, day=5))
    ids = [f"r{i:07d}" for i in range(20_000)]
    changed = sum(world.changed_on(rid, 5) for rid in ids)
    assert abs(changed / 20_000 - 0.2) < 0.015
    assert [world.record(r) for r in ids[:50]] == [again.record(r) for r in ids[:50]]
    other_seed = World(SampleApiConfig(resources=20_000, change_rate=0.2, seed=4, day=5))
    assert sum(other_seed.changed_on(r, 5) for r in ids) != changed
    # version is the last change day: unchanged resources keep their version
    for rid in ids[:200]:
        assert world.version(rid, 5) == (5 if world.changed_on(rid, 5) else world.version(rid, 4))


def test_gone_resources_answer_410_and_unknown_ones_404():
    config = SampleApiConfig(resources=2000, gone_rate=0.05, day=2)
    world = World(config)
    gone = next(r for r in (f"r{i:07d}" for i in range(2000)) if not world.exists(r))

    async def go(c):
        return (await c.get(f"/items/{gone}")).status_code, (await c.get("/items/r9999999")).status_code

    (deleted, unknown), counters = call(config, go)
    assert (deleted, unknown) == (410, 404)
    assert counters["gone"] == 2


def test_latency_is_applied():
    config = SampleApiConfig(resources=5, latency_ms=50, latency_jitter_ms=10)

    async def go(c):
        started = time.perf_counter()
        await asyncio.gather(*(c.get("/items/r0000000") for _ in range(5)))
        return time.perf_counter() - started

    elapsed, _ = call(config, go)
    assert 0.04 <= elapsed < 1.0  # concurrent requests each wait 40-60 ms


def test_rate_limit_answers_429_with_retry_after():
    config = SampleApiConfig(resources=5, rate_limit=10)

    async def go(c):
        return [await c.get("/items/r0000000", params={"fields": "id"}) for _ in range(30)]

    replies, counters = call(config, go)
    throttled = [r for r in replies if r.status_code == 429]
    assert 15 <= len(throttled) <= 20  # a 10-request burst passes, the rest of the instant is refused
    assert all(int(r.headers["retry-after"]) >= 1 for r in throttled)
    assert counters["throttled"] == len(throttled)
    assert counters["probe"] == 30  # every request reached the endpoint and is billable


def test_transient_faults_and_per_resource_poison():
    config = SampleApiConfig(resources=1000, transient_rate=0.1, poison_rate=0.05, malformed_rate=0.03, seed=9)
    world = World(config)
    poison = [r for r in (f"r{i:07d}" for i in range(1000)) if world.is_poison(r) and not world.is_malformed(r)]
    malformed = [r for r in (f"r{i:07d}" for i in range(1000)) if world.is_malformed(r)]

    async def go(c):
        faults = [(await c.get("/items/r0000001", params={"fields": "id"})).status_code for _ in range(1000)]
        bad = await c.get(f"/items/{poison[0]}/details")
        broken = await c.get(f"/items/{malformed[0]}/details")
        return faults, bad, broken

    (faults, bad, broken), counters = call(config, go)
    assert 60 <= faults.count(503) <= 140
    assert counters["transient"] == faults.count(503) + (bad.status_code == 503) + (broken.status_code == 503)
    assert 30 <= len(poison) <= 70 and 15 <= len(malformed) <= 45
    if bad.status_code == 200:
        assert bad.json()["id"] is None
    if broken.status_code == 200:
        with pytest.raises(ValueError):
            broken.json()


def test_timeouts_hang_past_the_client_deadline(sample_server):
    server = sample_server(resources=5, timeout_rate=1.0, timeout_seconds=2)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/items/r0000000", timeout=httpx.Timeout(0.3, connect=2))
    assert server.stats()["timeouts"] == 1


def test_settings_are_checked_and_changeable_at_run_time():
    with pytest.raises(ValueError, match="change_rate"):
        SampleApiConfig(change_rate=1.5)
    with pytest.raises(ValueError, match="nonsense"):
        SampleApiConfig().updated({"nonsense": 1})

    async def go(c):
        bad = await c.post("/_sim/config", json={"latency_ms": -1})
        good = await c.post("/_sim/config", json={"day": 9})
        return bad, good

    (bad, good), counters = call(SampleApiConfig(resources=5), go)
    assert bad.status_code == 400 and "latency_ms" in bad.json()["error"]
    assert good.json()["day"] == 9
    assert counters["billable"] == 0  # the control panel is never billed


def test_command_line_flags_cover_every_knob():
    _, config = parse_args(["--resources", "50", "--bulk-probe", "false", "--change-rate", "0.5", "--token", "t"])
    assert (config.resources, config.bulk_probe, config.change_rate, config.token) == (50, False, 0.5, "t")


def test_served_on_a_loopback_port(sample_server):
    server = sample_server(resources=100, day=2)
    reply = httpx.get(f"{server.url}/items/r0000042", params={"fields": "id,version"})
    assert reply.status_code == 200 and reply.json()["id"] == "r0000042"
    assert server.stats()["probe"] == 1
    server.reset()
    assert server.stats()["billable"] == 0


def test_flaky_resources_fail_their_first_calls_in_a_row_then_answer():
    config = SampleApiConfig(resources=400, flaky_rate=0.1, flaky_attempts=5, seed=3)
    world = World(config)
    flaky = {rid: world.flaky_failures(rid) for rid in world.ids() if world.flaky_failures(rid)}
    assert 20 <= len(flaky) <= 60 and set(flaky.values()) <= {1, 2, 3, 4, 5} and len(set(flaky.values())) > 1
    steady = next(rid for rid in world.ids() if rid not in flaky)

    async def go(c):
        statuses = {rid: [(await c.get(f"/items/{rid}")).status_code for _ in range(7)] for rid in list(flaky)[:10]}
        statuses[steady] = [(await c.get(f"/items/{steady}/details")).status_code for _ in range(3)]
        return statuses

    statuses, counters = call(config, go)
    for rid, seen in statuses.items():  # the same resource fails k consecutive calls, not random ones
        k = flaky.get(rid, 0)
        assert seen == [503] * k + [200] * (len(seen) - k), rid
    assert counters["flaky"] == sum(flaky[rid] for rid in list(flaky)[:10])


def test_flaky_calls_are_counted_across_days():
    config = SampleApiConfig(resources=400, flaky_rate=0.2, flaky_attempts=3, seed=5)
    rid = next(r for r in World(config).ids() if World(config).flaky_failures(r) == 3)
    app = create_app(config)

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sample") as c:
            first = [(await c.get(f"/items/{rid}")).status_code for _ in range(2)]
            await c.post("/_sim/config", json={"day": 2})  # the next day: the shard has not forgotten
            await c.post("/_sim/reset")  # nor has resetting the counters
            second = [(await c.get(f"/items/{rid}")).status_code for _ in range(2)]
            return first, second

    assert asyncio.run(go()) == ([503, 503], [503, 200])


def test_an_id_is_one_raw_path_segment():
    async def go(c):
        slash = await c.get("/items/r0000001%2Fdetails")  # an id holding a slash, not the detail call
        dots = await c.get("/items/%2E%2E")
        real = await c.get("/items/r0000001/details")
        deeper = await c.get("/items/a/b/c")
        return slash, dots, real, deeper

    (slash, dots, real, deeper), counters = call(SampleApiConfig(resources=5), go)
    assert slash.status_code == 404 and slash.json()["error"] == "r0000001/details not found"
    assert dots.status_code == 404 and dots.json()["error"] == ".. not found"
    assert real.status_code == 200 and "description" in real.json()
    assert deeper.status_code == 404 and counters["probe"] == 2 and counters["detail"] == 1
