"""One batch through each probe strategy: outcomes and the exact number of calls."""

import asyncio
import math

import httpx
import pytest

from pipelines.core.fingerprint import fingerprint
from pipelines.core.outcomes import Outcome, StoredState
from pipelines.core.sync_batch import Listed, ProbeStrategy, sync_batch
from pipelines.sample_api import SampleApiConfig, World, create_app
from pipelines.source.client import CallMeter, SourceApiClient
from pipelines_tests.helpers import client_settings

IDS = [f"r{i:07d}" for i in range(100)]
FIELDS = ["id", "version", "updated_at"]
PER_ID = [s for s in ProbeStrategy if s not in (ProbeStrategy.LISTING, ProbeStrategy.CHANGED_SINCE)]


def sync(config: SampleApiConfig, strategy: ProbeStrategy, stored: dict, listed: Listed | None = None):
    app = create_app(config)

    async def go():
        client = SourceApiClient(client_settings("http://sample"), transport=httpx.ASGITransport(app=app))
        async with client:
            meter = CallMeter()
            result = await sync_batch(
                client,
                IDS,
                stored,
                strategy=strategy,
                probe_fields=FIELDS,
                fingerprint_fields=["version"],
                meter=meter,
                listed=listed,
            )
            return result, meter

    result, meter = asyncio.run(go())
    return result, meter, app.state.api.counters.snapshot()


def yesterday(world: World) -> dict[str, StoredState]:
    return {
        rid: StoredState(fingerprint({"version": world.version(rid, 1)}, ["version"]), f'"{world.version(rid, 1)}"')
        for rid in IDS
    }


@pytest.mark.parametrize("strategy", PER_ID)
def test_day_one_fetches_everything(strategy):
    result, meter, server = sync(SampleApiConfig(resources=100, day=1), strategy, {})
    assert {r.outcome for r in result.results} == {Outcome.CHANGED}
    assert all(r.reason == "new" for r in result.results)
    probes = 1 if strategy is ProbeStrategy.BULK else 100
    assert meter.total == server["billable"] == probes + 100


@pytest.mark.parametrize("strategy", PER_ID)
def test_day_two_details_only_what_changed(strategy):
    config = SampleApiConfig(resources=100, day=2, change_rate=0.3, seed=1)
    world = World(config)
    changed = {rid for rid in IDS if world.changed_on(rid, 2)}
    result, meter, server = sync(config, strategy, yesterday(world))
    assert {r.resource_id for r in result.results if r.outcome is Outcome.CHANGED} == changed
    assert sum(r.outcome is Outcome.UNCHANGED for r in result.results) == 100 - len(changed)
    assert server["detail"] == len(changed)
    probes = math.ceil(100 / 100) if strategy is ProbeStrategy.BULK else 100
    assert meter.total == server["billable"] == probes + len(changed)
    if strategy is ProbeStrategy.CONDITIONAL:
        assert server["not_modified"] == 100 - len(changed)
    for update in result.updates:
        if update.changed:
            assert update.details == world.record(update.resource_id, 2)


@pytest.mark.parametrize("strategy", PER_ID)
def test_bad_records_and_gone_resources_never_sink_the_batch(strategy):
    config = SampleApiConfig(resources=100, day=3, gone_rate=0.03, poison_rate=0.05, malformed_rate=0.02, seed=4)
    world = World(config)
    result, _, _ = sync(config, strategy, {})
    by_id = {r.resource_id: r for r in result.results}
    assert len(by_id) == 100  # exactly one outcome per sub-job
    for rid in IDS:
        if not world.exists(rid):
            assert by_id[rid].outcome is Outcome.GONE
        elif world.is_poison(rid) or world.is_malformed(rid):
            assert by_id[rid].outcome is Outcome.FAILED and by_id[rid].error_class == "poison"
        else:
            assert by_id[rid].outcome is Outcome.CHANGED


@pytest.mark.parametrize("strategy", PER_ID)
def test_an_id_that_cannot_be_sent_gets_its_own_outcome_and_blocks_nothing(strategy):
    app = create_app(SampleApiConfig(resources=100, day=1))
    bad = ["new\nline", "", "x" * 201]

    async def go():
        async with SourceApiClient(client_settings("http://sample"), transport=httpx.ASGITransport(app=app)) as client:
            meter = CallMeter()
            result = await sync_batch(
                client,
                [*IDS, *bad],
                {},
                strategy=strategy,
                probe_fields=FIELDS,
                fingerprint_fields=["version"],
                meter=meter,
            )
            return result, meter

    result, meter = asyncio.run(go())
    outcomes = {r.resource_id: r for r in result.results}
    assert all(outcomes[rid].outcome is Outcome.CHANGED for rid in IDS)  # the others synced
    for rid in bad:  # never sent: its own class, routed to the dead letter by the tiers
        assert outcomes[rid].outcome is Outcome.FAILED and outcomes[rid].error_class == "invalid_id"
    assert meter.total == app.state.api.counters.snapshot()["billable"]


@pytest.mark.parametrize("strategy", [ProbeStrategy.LISTING, ProbeStrategy.CHANGED_SINCE])
def test_the_listing_answers_for_the_ids_it_served(strategy):
    """A listed id costs no probe; under changed_since a stored id left out is unchanged unless it
    must be probed (a retry); an id the listing did not serve is probed (bulk, as declared)."""
    config = SampleApiConfig(resources=100, day=2, change_rate=0.3)
    world = World(config)
    listed_ids = IDS[:60] if strategy is ProbeStrategy.LISTING else [r for r in IDS if world.changed_on(r, 2)]
    fingerprints = {rid: fingerprint({"version": world.version(rid, 2)}, ["version"]) for rid in listed_ids}
    retry = next(r for r in IDS if r not in fingerprints)
    listed = Listed(fingerprints, changed_only=strategy is ProbeStrategy.CHANGED_SINCE, must_probe=frozenset({retry}))
    result, meter, server = sync(config, strategy, yesterday(world), listed)
    outcomes = {r.resource_id: r for r in result.results}
    changed = {r for r in IDS if world.changed_on(r, 2)}
    assert {rid for rid, r in outcomes.items() if r.outcome == Outcome.CHANGED} == changed
    assert server["detail"] == len(changed)
    probed = set(IDS) - set(fingerprints) if strategy is ProbeStrategy.LISTING else {retry}
    assert server.get("probe", 0) == 0 and server["bulk_probe"] == 1 and meter.calls["bulk_probe"] == 1
    if strategy is ProbeStrategy.CHANGED_SINCE:
        assumed = set(IDS) - set(fingerprints) - probed
        assert {rid for rid in assumed if outcomes[rid].reason == "not_changed_since"} == assumed
    assert len(outcomes) == len(IDS)
