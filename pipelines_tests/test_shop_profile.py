"""The sample API's second profile, spoken by the client from its YAML declaration alone, over
real loopback HTTP: numeric ids in envelopes, a custom auth header, Link-header pages, a bulk
probe that leaves missing ids out, a list-shaped detail."""

import asyncio

import pytest

from pipelines.core.errors import ApiFailure, ErrorClass, SourceError
from pipelines.sample_api import SampleApiConfig, World
from pipelines.sample_api.shop import FIRST_ID, metafields
from pipelines.source.client import CallMeter, SourceApiClient
from pipelines.source.config import ClientSettings, resolve_credentials
from pipelines.source.declaration_file import load_declaration
from pipelines_tests.helpers import SHOP_DECLARATION

TOKEN = "shop-token-5a1f"
N = 1_200


@pytest.fixture(scope="module")
def shop_server():
    from pipelines.sample_api.process import SampleServer

    server = SampleServer(resources=N, seed=4, day=2, token=TOKEN, poison_rate=0.01, malformed_rate=0.01)
    yield server
    server.stop()


def settings(url: str, token: str = TOKEN) -> ClientSettings:
    source = load_declaration(SHOP_DECLARATION)
    return ClientSettings(url, source, resolve_credentials(source, {"SHOP_ACCESS_TOKEN": token}))


def run(url, fn, token=TOKEN):
    async def go():
        async with SourceApiClient(settings(url, token)) as client:
            try:
                return await fn(client), client.meter
            except (SourceError, ApiFailure) as exc:
                return exc, client.meter

    return asyncio.run(go())


WORLD = World(SampleApiConfig(resources=N, seed=4, day=2, poison_rate=0.01, malformed_rate=0.01))


def sid(index: int) -> str:
    return str(FIRST_ID + index)


def test_the_listing_pages_by_link_header_through_every_id(shop_server):
    async def every_page(client):
        return [page async for page in client.iter_ids()]

    shop_server.reset()
    pages, meter = run(shop_server.url, every_page)
    assert [len(p) for p in pages] == [250, 250, 250, 250, 200]
    assert [i for p in pages for i in p] == [str(FIRST_ID + int(r[1:])) for r in WORLD.ids()]
    assert meter.calls["listing"] == shop_server.stats()["listing"] == 5


def test_the_probe_reads_the_enveloped_record_and_its_numeric_id(shop_server):
    probe, _ = run(shop_server.url, lambda c: c.probe(sid(7)))
    assert probe.record == {"id": FIRST_ID + 7, "updated_at": WORLD.record("r0000007")["updated_at"]}
    gone, _ = run(shop_server.url, lambda c: c.probe(str(FIRST_ID + N + 5)))
    assert isinstance(gone, SourceError) and gone.error_class is ErrorClass.GONE and gone.status == 404


def test_the_bulk_probe_tells_missing_ids_by_their_absence(shop_server):
    wanted = [sid(1), sid(2), str(FIRST_ID + N + 1), sid(3)]
    (records, missing), meter = run(shop_server.url, lambda c: c.bulk_probe(wanted))
    assert sorted(records) == [sid(1), sid(2), sid(3)] and missing == [str(FIRST_ID + N + 1)]
    assert meter.calls == {"bulk_probe": 1}


def test_the_detail_is_a_list_and_a_bad_one_is_poison(shop_server):
    good = next(i for i in range(N) if not WORLD.is_poison(f"r{i:07d}") and not WORLD.is_malformed(f"r{i:07d}"))
    detail, _ = run(shop_server.url, lambda c: c.detail(sid(good)))
    assert detail.record == metafields(WORLD.record(f"r{good:07d}"))
    for flaw in (WORLD.is_poison, WORLD.is_malformed):
        bad = next(i for i in range(N) if flaw(f"r{i:07d}"))
        error, _ = run(shop_server.url, lambda c, bad=bad: c.detail(sid(bad)))
        assert isinstance(error, SourceError) and error.error_class is ErrorClass.POISON


def test_the_token_travels_in_the_declared_header_and_a_refusal_names_its_variable(shop_server):
    meter = CallMeter()
    failure, _ = run(shop_server.url, lambda c: c.probe(sid(1), meter=meter), token="wrong")
    assert isinstance(failure, ApiFailure) and failure.kind == "auth_failed"
    assert "SHOP_ACCESS_TOKEN" in str(failure) and "wrong" not in str(failure)


def test_an_id_that_is_not_a_number_is_refused_before_any_call(shop_server):
    from pipelines.core.ids import id_problem

    assert "not an integer" in id_problem("12a", "integer") and id_problem("12", "integer") is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, "SHOP_ACCESS_TOKEN is not set"), ({"SHOP_ACCESS_TOKEN": "ab cd"}, "holds whitespace")],
)
def test_a_credential_missing_or_unsendable_is_named_and_never_shown(environ, expected):
    from pipelines.source.config import MissingSecretError

    source = load_declaration(SHOP_DECLARATION)
    real = source.model_copy(
        update={"client": source.client.model_copy(update={"sample": None, "base_url": "https://x"})}
    )
    with pytest.raises(MissingSecretError, match=expected) as caught:
        resolve_credentials(real, environ)
    assert "ab cd" not in str(caught.value)
