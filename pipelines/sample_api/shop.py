"""The sample API's second profile, shaped like a commerce platform's REST API (``/v1/products``).

The same world as ``/items`` (same resources, same changes, same faults), spoken differently in
every dimension a source declaration covers: numeric ids, every response in an envelope
(``{"product": {...}}``, ``{"products": [...]}``), the token in ``X-Shop-Access-Token``, a listing
paged by ``Link`` headers with an opaque ``page_info``, a bulk probe that leaves missing ids out,
a detail that is a list (``{"metafields": [...]}``), no ``version`` field (the change marker is
``updated_at``), no ETag, and 404 for anything not there.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipelines.sample_api.params import embeds as _embeds
from pipelines.sample_api.params import fields_param as _fields
from pipelines.sample_api.params import since_param as _since
from pipelines.sample_api.world import EPOCH, project, resource_id, resource_index

if TYPE_CHECKING:
    from pipelines.sample_api.app import SampleApi

FIRST_ID = 1_000_000  # the shop id of the world's resource 0
TOKEN_HEADER = "x-shop-access-token"
MAX_IDS = 250
MAX_LIMIT = 250


def shop_id(rid: str) -> int:
    index = resource_index(rid)
    assert index is not None
    return FIRST_ID + index


def world_id(sid: str) -> str | None:
    """The world's id of a shop id, or None when it is no id of this shop."""
    if not (sid.isascii() and sid.isdigit()) or len(sid) > 12 or int(sid) < FIRST_ID:
        return None
    return resource_id(int(sid) - FIRST_ID)


def product(record: dict) -> dict:
    """A world record as the shop serves it: numeric id, no version, the change in updated_at."""
    return {
        "id": shop_id(record["id"]),
        "title": record["name"],
        "vendor": record["category"],
        "tags": ", ".join(record["tags"]),
        "updated_at": record["updated_at"],
        "created_at": EPOCH.isoformat(),
        "variants": [{"price": f"{record['price']:.2f}", "grams": int(record["attributes"]["weight"] * 1000)}],
    }


def metafields(record: dict) -> list[dict]:
    sid = shop_id(record["id"])
    values = {"description": record["description"], "rank": record["attributes"]["rank"], "origin": record["category"]}
    return [
        {"id": sid * 10 + i, "namespace": "custom", "key": key, "value": value, "updated_at": record["updated_at"]}
        for i, (key, value) in enumerate(values.items())
    ]


def _page_info(index: int) -> str:
    return base64.urlsafe_b64encode(f"after:{index}".encode()).decode().rstrip("=")


def _page_start(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text.removeprefix("after:")) if text.startswith("after:") else None
    except (ValueError, UnicodeDecodeError):
        return None


class ShopProfile:
    """The ``/v1/products`` endpoints over one ``SampleApi`` (its world, counters and faults)."""

    def __init__(self, api: SampleApi) -> None:
        self.api = api

    def authorised(self, request: Request) -> bool:
        token = self.api.config.token
        return not token or request.headers.get(TOKEN_HEADER) == token

    async def product_route(self, request: Request) -> Response:
        """``/v1/products/{id}.json`` and ``/v1/products/{id}/metafields.json``."""
        raw = request.scope.get("raw_path") or request.url.path.encode()
        segments = [unquote(s, errors="replace") for s in raw.decode("latin-1").split("/")[3:]]
        if len(segments) == 1 and segments[0].endswith(".json"):
            return await self.probe(request, segments[0].removesuffix(".json"))
        if len(segments) == 2 and segments[1] == "metafields.json":
            return await self.detail(request, segments[0])
        return JSONResponse({"errors": "Not Found"}, status_code=404)

    async def probe(self, request: Request, sid: str) -> Response:
        api = self.api
        rid = world_id(sid)
        if early := await api.gate(request, "probe", rid, profile=self):
            return early
        if rid is None or not api.world.exists(rid):
            return self._missing()
        return api.respond({"product": project(product(api.world.record(rid)), _fields(request))})

    async def detail(self, request: Request, sid: str) -> Response:
        api = self.api
        rid = world_id(sid)
        if early := await api.gate(request, "detail", rid, profile=self):
            return early
        if rid is None or not api.world.exists(rid):
            return self._missing()
        if api.world.is_malformed(rid):
            api.counters.add("malformed")
            return Response(b'{"metafields": [{"id": ' + sid.encode() + b", ", media_type="application/json")
        if api.world.is_poison(rid):
            api.counters.add("poison")
            return api.respond({"metafields": "corrupt"})
        return api.respond({"metafields": metafields(api.world.record(rid))})

    async def products(self, request: Request) -> Response:
        if "ids" in request.query_params:
            return await self._bulk_probe(request)
        return await self._listing(request)

    async def _bulk_probe(self, request: Request) -> Response:
        api = self.api
        if early := await api.gate(request, "bulk_probe", profile=self):
            return early
        ids = [i for i in request.query_params["ids"].split(",") if i]
        if len(ids) > MAX_IDS:
            return JSONResponse({"errors": f"ids: at most {MAX_IDS}"}, status_code=400)
        fields = _fields(request)
        include = _embeds(request, "include", "metafields")
        found = []
        for sid in ids:  # a missing id is simply left out
            rid = world_id(sid)
            if rid is not None and api.world.exists(rid):
                item = project(product(api.world.record(rid)), fields)
                found.append(self._included(item, rid) if include else item)
        return api.respond({"products": found})

    def _included(self, item: dict, rid: str) -> dict:
        """``item`` with its metafields (``?include=metafields``): left out for a malformed
        resource, invalid for a poison one, as the detail call would fail for them."""
        api = self.api
        if api.world.is_malformed(rid):
            return item
        api.counters.add("embedded")
        return {**item, "metafields": "corrupt" if api.world.is_poison(rid) else metafields(api.world.record(rid))}

    async def _listing(self, request: Request) -> Response:
        api = self.api
        if early := await api.gate(request, "listing", profile=self):
            return early
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return JSONResponse({"errors": "limit: not a number"}, status_code=400)
        if not 1 <= limit <= MAX_LIMIT:
            return JSONResponse({"errors": f"limit: between 1 and {MAX_LIMIT}"}, status_code=400)
        start = 0
        if token := request.query_params.get("page_info"):
            found = _page_start(token)
            if found is None:
                return JSONResponse({"errors": "page_info: invalid"}, status_code=400)
            start = found
        fields = _fields(request) or None
        since = _since(request, "updated_at_min")
        if isinstance(since, Response):
            return since
        include = _embeds(request, "include", "metafields")
        items: list[dict] = []
        index = start
        resources = api.config.resources
        while len(items) < limit and index < resources:
            rid = resource_id(index)
            if api.world.exists(rid) and (since is None or api.world.changed_since(rid, since)):
                item = project(product(api.world.record(rid)), fields)
                items.append(self._included(item, rid) if include else item)
            index += 1
        headers = {}
        if index < resources:
            query = f"limit={limit}&page_info={_page_info(index)}"
            for kept in ("fields", "updated_at_min", "include"):  # the filter holds on every page
                if request.query_params.get(kept):
                    query += f"&{kept}={quote(request.query_params[kept], safe=',')}"
            headers["Link"] = f'<{request.url.replace(query=query)}>; rel="next"'
        return api.respond({"products": items}, headers)

    def _missing(self) -> Response:
        self.api.counters.add("gone")
        return JSONResponse({"errors": "Not Found"}, status_code=404)
