"""The client's requests are built without httpx on the hot path (wire.Calls) and the embedded
sample is called without httpx's client (senders.AsgiSender): both must agree with httpx to the
byte, hostile ids included."""

import asyncio
import itertools

import httpx
import pytest

from pipelines.core.urls import item_path
from pipelines.sample_api import SampleApiConfig, create_app
from pipelines.sample_api.world import resource_id
from pipelines.source.senders import AsgiSender, HttpxSender
from pipelines.source.wire import Calls

HOSTILE_IDS = ["r0000001", "a/b", "a?b=c", "a#frag", "100%", "..", ".", "a b", "é🙂", "x\x00y\n", "a,b;c=d@e:f"]
BASES = ["http://127.0.0.1:8080", "https://api.example.com/v2", "https://api.example.com/v2/", "http://h"]
PARAMS = [None, {}, {"fields": "a,b", "q": "x y&z=é"}]
HEADERS = [None, {"X-Trace": "1"}, {"accept": "text/plain", "If-None-Match": '"abc"'}]
DEFAULTS = {"Accept": "application/json", "Authorization": "Bearer t0ken"}


def _httpx_built(http: httpx.AsyncClient, path, params, headers) -> tuple[str, list[tuple[str, str]]]:
    request = http.build_request("GET", path, params=params or None, headers=headers)
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k.lower() != b"host"]
    return str(request.url), raw


@pytest.mark.parametrize("base", BASES)
def test_a_call_is_built_as_httpx_builds_it(base):
    http = httpx.AsyncClient(base_url=base, headers=DEFAULTS)
    calls = Calls(http)
    templates = ["/items/{id}", "/items/{id}/details", "/v1/things/{id}.json"]
    for template, rid, params, headers in itertools.product(templates, HOSTILE_IDS, PARAMS, HEADERS):
        path = item_path(template, rid)
        call = calls.build("GET", path, params=params, headers=headers)
        assert (call.url, list(call.headers.items())) == _httpx_built(http, path, params, headers), (
            template,
            rid,
            params,
        )


@pytest.mark.parametrize("base", BASES)
def test_a_routes_calls_are_built_as_httpx_builds_them(base):
    """A route prepares an endpoint once; each of its calls is still httpx's to the byte, for any
    id, and with a call's own headers (a conditional probe's ETag) on top of the route's."""
    http = httpx.AsyncClient(base_url=base, headers=DEFAULTS)
    calls = Calls(http)
    templates = ["/items/{id}", "/items/{id}/details", "/v1/things/{id}.json", "/x/{id}/{id}"]
    extras = [None, {"If-None-Match": '"v1"'}, {"accept": "text/csv"}]
    for template, params, headers in itertools.product(templates, PARAMS, HEADERS):
        route = calls.route(template, params, headers)
        assert route.pieces is not None  # every one of these takes the fast path
        for rid, extra in itertools.product(HOSTILE_IDS + [""], extras):
            call = calls.item(route, rid, extra)
            own = {**(headers or {}), **(extra or {})} or None
            expected = _httpx_built(http, item_path(template, rid), params, own)
            assert (call.url, list(call.headers.items())) == expected, (template, rid, params, extra)


def test_a_template_an_id_could_turn_into_a_dot_segment_is_built_by_httpx():
    """Beside a segment of dots, an empty id or a dot-only id's %2E could spell ``..``: such a
    template (or one httpx would change) is never prepared, and httpx builds each call."""
    http = httpx.AsyncClient(base_url="http://h/api", headers=DEFAULTS)
    calls = Calls(http)
    for template in ["/items/.{id}", "/items/{id}../x", "/items/..{id}.", "/a b/{id}", "/items/{id}?expand=1"]:
        route = calls.route(template, {"fields": "a"})
        assert route.pieces is None, template
        for rid in ["", ".", "..", "a/b", "r1"]:
            call = calls.item(route, rid)
            expected = _httpx_built(http, item_path(template, rid), {"fields": "a"}, None)
            assert (call.url, list(call.headers.items())) == expected, (template, rid)


def test_paths_httpx_would_change_are_built_by_httpx():
    """A template with characters a URL cannot carry as they are, its own query, or a dot
    segment: httpx encodes or resolves them, so the slow path answers exactly what httpx does."""
    http = httpx.AsyncClient(base_url="http://h/api", headers=DEFAULTS)
    calls = Calls(http)
    for path in ["/items/a b/x", "/items/x?expand=1", "/items/../admin", "/items/./x", "/items/100%zz", "items/x"]:
        for params in PARAMS:
            call = calls.build("GET", path, params=params)
            assert (call.url, list(call.headers.items())) == _httpx_built(http, path, params, None), path


def test_an_encoded_query_replaces_the_paths_own():
    http = httpx.AsyncClient(base_url="http://h/api")
    calls = Calls(http)
    assert calls.build("GET", "/items", query="ids=a%2Cb,c").url == "http://h/api/items?ids=a%2Cb,c"
    for path in ["/items ", "/items?old=1"]:  # the slow path: as httpx builds the URL given whole
        expected = http.build_request("GET", httpx.URL(path, query=b"ids=1")).url
        assert (
            calls.build("GET", path, query="ids=1").url
            == str(expected)
            == "http://h/api" + path[:6] + ("%20?ids=1" if " " in path else "?ids=1")
        )


def test_the_embedded_sender_answers_what_httpxs_asgi_transport_answers():
    app = create_app(SampleApiConfig(seed=7, resources=50, change_rate=0.2, day=2))
    http = httpx.AsyncClient(base_url="http://sample", headers={"Accept-Encoding": "gzip"})
    calls = Calls(http)
    rid = resource_id(3)
    paths = [f"/items/{rid}", f"/items/{rid}/details", item_path("/items/{id}", "a/../b?c"), "/items"]

    async def both():
        direct, through = AsgiSender(app), HttpxSender(httpx.AsyncClient(transport=httpx.ASGITransport(app=app)))
        answers = []
        for path in paths:
            call = calls.build("GET", path, params={"fields": "id,name"})
            answers.append((await direct.exchange(call, 10_000_000), await through.exchange(call, 10_000_000)))
        await through.aclose()
        return answers

    for ours, theirs in asyncio.run(both()):
        assert ours.status_code == theirs.status_code
        assert ours.body == theirs.body
        assert sorted((k.lower(), v) for k, v in ours.headers.items()) == sorted(theirs.headers.items())
    assert {a.status_code for a, _ in asyncio.run(both())} >= {200, 404}
