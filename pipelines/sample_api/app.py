"""The sample source API as an ASGI app (Starlette): embedded (called in process by the client's ASGI sender), or
served on a loopback port by uvicorn (``python -m pipelines.sample_api``).

Endpoints follow docs/source-api.md (``/items``); the same world is served a second way, shaped
like a commerce platform's API, under ``/v1/products`` (``shop.py``). ``/_sim/*`` is the simulator's control panel: it is never
rate limited, never authenticated and never counted.

Ids are read as a well-behaved API reads them: the path is split into segments on its raw
(still percent-encoded) form and each segment decoded on its own, so an id holding ``/`` or
``..`` is one id. The bulk probe's ``ids`` are decoded, then split on commas, as most servers
do: an id holding a comma cannot be sent in a bulk probe (the client probes it alone).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import secrets
import time
from collections import Counter
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.sample_api.config import SampleApiConfig
from pipelines.sample_api.counters import Counters
from pipelines.sample_api.params import embeds as _embeds
from pipelines.sample_api.params import fields_param as _fields
from pipelines.sample_api.params import since_param as _since
from pipelines.sample_api.shop import ShopProfile
from pipelines.sample_api.world import World, project, resource_id, resource_index


class TokenBucket:
    """Requests per second with a one-second burst; ``take`` answers the wait when empty."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is free."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class SampleApi:
    """State of one sample API instance: its configuration, world, counters and rate bucket."""

    def __init__(self, config: SampleApiConfig | None = None) -> None:
        self.counters = Counters()
        self.issued: dict[str, float] = {}  # OAuth2 tokens it issued, and when each expires
        self.flaky_calls: Counter[str] = Counter()  # calls each flaky resource has had, across days
        self.configure(config or SampleApiConfig())
        self._random = random.Random(self.config.seed)

    def configure(self, config: SampleApiConfig) -> None:
        previous = getattr(self, "config", None)
        if previous is None or (previous.seed, previous.flaky_rate, previous.flaky_attempts) != (
            config.seed,
            config.flaky_rate,
            config.flaky_attempts,
        ):
            self.flaky_calls.clear()  # another set of flaky resources: their counts start again
        self.config = config
        self.world = World(config)
        self.bucket = TokenBucket(config.rate_limit)

    # -- request pipeline -------------------------------------------------------------------

    async def gate(
        self, request: Request, endpoint: str, rid: str | None = None, profile: ShopProfile | None = None
    ) -> Response | None:
        """Auth (as the profile takes it), rate limit, latency and injected faults; a response
        here ends the request."""
        cfg = self.config
        self.counters.add(endpoint)
        if cfg.oauth_client_id:  # only a token it issued, unexpired
            held = request.headers.get("authorization", "").removeprefix("Bearer ")
            authorised = self.issued.get(held, 0.0) > time.monotonic()
        else:
            authorised = (
                profile.authorised(request)
                if profile
                else request.headers.get("authorization") == f"Bearer {cfg.token}"
            )
        if (cfg.token or cfg.oauth_client_id) and not authorised:
            self.counters.add("unauthorized")
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        wait = self.bucket.take()
        self.counters.tick(throttled=wait > 0)
        if wait > 0:
            self.counters.add("throttled")
            return JSONResponse(
                {"error": "rate limit exceeded"},
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if cfg.latency_ms or cfg.latency_jitter_ms:
            jitter = self._random.uniform(-cfg.latency_jitter_ms, cfg.latency_jitter_ms)
            await asyncio.sleep(max(0.0, cfg.latency_ms + jitter) / 1000)
        if rid is not None and (failures := self.world.flaky_failures(rid)):
            self.flaky_calls[rid] += 1
            if self.flaky_calls[rid] <= failures:
                self.counters.add("flaky")
                return JSONResponse({"error": "shard unavailable"}, status_code=503)
        draw = self._random.random()
        if draw < cfg.transient_rate:
            self.counters.add("transient")
            return JSONResponse({"error": "upstream unavailable"}, status_code=503)
        if draw < cfg.transient_rate + cfg.timeout_rate:
            self.counters.add("timeouts")
            await asyncio.sleep(cfg.timeout_seconds)
            return JSONResponse({"error": "gateway timeout"}, status_code=504)
        return None

    def respond(self, body: object, headers: dict[str, str] | None = None) -> Response:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.counters.add("bytes_sent", len(payload))
        return Response(payload, media_type="application/json", headers=headers)

    # -- endpoints --------------------------------------------------------------------------

    async def item(self, request: Request) -> Response:
        """``/items/{id}`` and ``/items/{id}/details``, the id decoded from its own raw segment."""
        raw = request.scope.get("raw_path") or request.url.path.encode()
        segments = [unquote(s, errors="replace") for s in raw.decode("latin-1").split("/")[2:]]
        if len(segments) == 1 and segments[0]:
            return await self.probe(request, segments[0])
        if len(segments) == 2 and segments[0] and segments[1] == "details":
            return await self.detail(request, segments[0])
        return JSONResponse({"error": "no such route"}, status_code=404)

    async def probe(self, request: Request, rid: str) -> Response:
        if early := await self.gate(request, "probe", rid):
            return early
        if not self.world.exists(rid):
            return self._missing(rid)
        version = self.world.version(rid)
        etag = f'"{version}"'
        if self.config.conditional and request.headers.get("if-none-match") == etag:
            self.counters.add("not_modified")
            return Response(status_code=304, headers={"ETag": etag})
        fields = _fields(request)
        if not fields:
            self.counters.add("probe_full")
        return self.respond(project(self.world.record(rid), fields), {"ETag": etag})

    async def detail(self, request: Request, rid: str) -> Response:
        if early := await self.gate(request, "detail", rid):
            return early
        if not self.world.exists(rid):
            return self._missing(rid)
        if self.world.is_malformed(rid):
            self.counters.add("malformed")
            return Response(b'{"id": "' + rid.encode() + b'", "version": ', media_type="application/json")
        if self.world.is_poison(rid):
            self.counters.add("poison")
            return self.respond({"id": None, "version": "corrupt", "name": 42})
        return self.respond(self.world.record(rid))

    async def items(self, request: Request) -> Response:
        if "ids" in request.query_params:
            return await self._bulk_probe(request)
        return await self._listing(request)

    async def _bulk_probe(self, request: Request) -> Response:
        if early := await self.gate(request, "bulk_probe"):
            return early
        if not self.config.bulk_probe:
            return JSONResponse({"error": "the ids parameter is not supported"}, status_code=400)
        ids = [i for i in request.query_params["ids"].split(",") if i]
        if len(ids) > self.config.max_bulk_ids:
            return JSONResponse({"error": f"at most {self.config.max_bulk_ids} ids per request"}, status_code=400)
        fields = _fields(request)
        embed = _embeds(request, "embed", "details")
        items, missing = [], []
        for rid in ids:
            if self.world.exists(rid):
                items.append(
                    self._embedded(project(self.world.record(rid), fields), rid)
                    if embed
                    else project(self.world.record(rid), fields)
                )
            else:
                missing.append(rid)
        return self.respond({"items": items, "missing": missing})

    def _embedded(self, item: dict, rid: str) -> dict:
        """``item`` with the resource's detail under ``details`` (``?embed=details``): the whole
        record; left out for a malformed resource, invalid for a poison one, as the detail call
        would fail for them."""
        if self.world.is_malformed(rid):
            return item
        self.counters.add("embedded")
        detail = {"id": None, "version": "corrupt", "name": 42} if self.world.is_poison(rid) else self.world.record(rid)
        return {**item, "details": detail}

    async def _listing(self, request: Request) -> Response:
        if early := await self.gate(request, "listing"):
            return early
        try:
            limit = int(request.query_params.get("limit", "500"))
            start = int(request.query_params.get("cursor") or 0)
        except ValueError:
            return JSONResponse({"error": "limit and cursor must be integers"}, status_code=400)
        if not 1 <= limit <= self.config.max_page_size:
            return JSONResponse(
                {"error": f"limit must be between 1 and {self.config.max_page_size}"},
                status_code=400,
            )
        fields = _fields(request) or ["id"]
        since = _since(request, "updated_since")
        if isinstance(since, Response):
            return since
        embed = _embeds(request, "embed", "details")
        items: list[dict] = []
        index = start
        while len(items) < limit and index < self.config.resources:
            rid = resource_id(index)
            if self.world.exists(rid) and (since is None or self.world.changed_since(rid, since)):
                item = self.world.projected(rid, fields)
                items.append(self._embedded(item, rid) if embed else item)
            index += 1
        next_cursor = str(index) if index < self.config.resources else None
        return self.respond({"items": items, "next_cursor": next_cursor})

    def _missing(self, rid: str) -> Response:
        self.counters.add("gone")
        index = resource_index(rid)
        if index is not None and index < self.config.resources:
            return JSONResponse({"error": f"{rid} was deleted"}, status_code=410)
        return JSONResponse({"error": f"{rid} not found"}, status_code=404)

    # -- simulator control ------------------------------------------------------------------

    async def oauth_token(self, request: Request) -> Response:
        """``POST /oauth/token`` (client credentials, the client's id and secret as HTTP basic):
        a bearer token for ``oauth_token_ttl`` seconds. Not billed, counted as ``token``."""
        cfg = self.config
        self.counters.add("token")
        expected = base64.b64encode(f"{cfg.oauth_client_id}:{cfg.oauth_client_secret}".encode()).decode()
        form = parse_qs((await request.body()).decode())
        if not cfg.oauth_client_id or request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != ["client_credentials"]:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        token = f"oat-{secrets.token_hex(12)}"
        self.issued[token] = time.monotonic() + cfg.oauth_token_ttl
        claimed = float(cfg.oauth_claimed_ttl) if cfg.oauth_claimed_ttl is not None else cfg.oauth_token_ttl
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": claimed})

    async def sim_stats(self, request: Request) -> Response:
        return JSONResponse(self.counters.snapshot())

    async def sim_timeline(self, request: Request) -> Response:
        return JSONResponse(self.counters.timeline())

    async def sim_peak(self, request: Request) -> Response:
        """The most billable requests in any one second since the last reset (a sliding window)."""
        return JSONResponse({"peak_1s": self.counters.peak(1.0)})

    async def sim_reset(self, request: Request) -> Response:
        self.counters.reset()
        return JSONResponse({"reset": True})

    async def sim_config(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(self.config.__dict__)
        try:
            self.configure(self.config.updated(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.config.__dict__)


def create_app(config: SampleApiConfig | None = None) -> Starlette:
    api = SampleApi(config)
    shop = ShopProfile(api)
    app = Starlette(
        routes=[
            Route("/items", api.items),
            Route("/items/{rest:path}", api.item),
            Route("/v1/products.json", shop.products),
            Route("/v1/products/{rest:path}", shop.product_route),
            Route("/oauth/token", api.oauth_token, methods=["POST"]),
            Route("/_sim/stats", api.sim_stats),
            Route("/_sim/timeline", api.sim_timeline),
            Route("/_sim/peak", api.sim_peak),
            Route("/_sim/reset", api.sim_reset, methods=["POST"]),
            Route("/_sim/config", api.sim_config, methods=["GET", "POST"]),
        ]
    )
    app.state.api = api
    return app
