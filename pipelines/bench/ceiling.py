"""The client's ceiling (issue 14, target 1): requests per second and CPU per request of the
project's client against bare loops, at the same concurrency, against the sample API with no
latency and no rate limit.

* **bare aiohttp**: an ``aiohttp.ClientSession`` making the detail calls and reading each body,
  nothing else: what this machine's one process can send; on asyncio's loop, as a user writes
  it, and on uvloop, the loop the client runs on (``SYNC_EVENT_LOOP``). The client is compared
  with the faster of the two.
* **bare aiohttp, uvloop, parsed**: the uvloop loop that also parses each body (``orjson``), as
  any sync must to check and store a record: how much of the client's gap is that work. Not a
  baseline; the client is compared with the bare loops that only read.
* **bare httpx**: the same loop through ``httpx.AsyncClient`` (the project's HTTP interface).
* **client**: ``SourceApiClient.detail`` as the sync calls it (the gate, the rate, the breaker,
  the size cap and decompression, the answer judged and parsed, the call counted).

The machine is shared and its speed moves by tens of percent from one second to the next, so the
aiohttp loops and the client take turns, ``ROUNDS`` times each (the httpx loop, ten times slower,
runs once), and each loop's row holds its median run: the ratio is of medians taken over the same
minutes; each run is long enough (20,000 calls by default, 3-5 s) that one slow second does not
make its figure (runs of 4,000 calls, under a second, moved from 3,837 to 7,266 requests/s in
one minute). CPU is the measuring process's own (``getrusage``): the server runs in a process of its
own. Every run's calls are also counted by the server, and must equal what the loop sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import httpx
import orjson

from pipelines.bench.cpu import own_cpu
from pipelines.bench.runs import Stage
from pipelines.sample_api.world import resource_id
from pipelines.settings import load_settings
from pipelines.source import event_loop
from pipelines.source.client import SourceApiClient
from pipelines.source.config import ClientSettings, Credentials
from pipelines.source.declaration import declare


async def bare_aiohttp_loop(url: str, paths: list[str], concurrency: int, parse: bool = False) -> None:
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(path: str) -> None:
            async with gate, session.get(url + path) as response:
                body = await response.read()
                response.raise_for_status()
                if parse:
                    orjson.loads(body)

        await asyncio.gather(*(one(p) for p in paths))


async def _bare_httpx(url: str, paths: list[str], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits) as http:

        async def one(path: str) -> None:
            async with gate:
                (await http.get(path)).raise_for_status()

        await asyncio.gather(*(one(p) for p in paths))


async def _client(url: str, ids: list[str], concurrency: int) -> int:
    source = declare(url, {"rate.max_concurrency": concurrency, "rate.min_concurrency": concurrency})
    async with SourceApiClient(ClientSettings(url, source, Credentials())) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(rid: str) -> None:
            async with gate:
                await client.detail(rid)

        await asyncio.gather(*(one(rid) for rid in ids))
        return client.meter.total


ROUNDS = 5
HTTPX_REQUESTS = 4_000


def _measure(
    stage: Stage,
    name: str,
    run: Callable[[], Coroutine[Any, Any, object]],
    requests: int,
    log,
    loop: event_loop.LoopName = "asyncio",
) -> dict:
    stage.server.reset()
    cpu, started = own_cpu(), time.perf_counter()
    counted = event_loop.run(run(), loop)
    wall, used = time.perf_counter() - started, own_cpu() - cpu
    served = stage.server.stats().get("detail", 0)
    row = {
        "loop": name,
        "requests": requests,
        "server_requests": served,
        "client_requests": counted if isinstance(counted, int) else requests,
        "wall_s": wall,
        "requests_per_s": requests / wall,
        "cpu_us_per_request": used / requests * 1e6,
    }
    log(f"  {name}: {row['requests_per_s']:,.0f} req/s, {row['cpu_us_per_request']:,.0f} us CPU per request")
    return row


def _median(runs: list[dict]) -> dict:
    """The run of median speed, with every run kept beside it (``every_run``)."""
    row = dict(sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2])
    row["every_run"] = runs
    return row


def client_ceiling(stage: Stage, requests: int, resources: int, log=print, rounds: int = ROUNDS) -> list[dict]:
    """The loops side by side, each its median run; ``vs_aiohttp`` against the faster aiohttp loop's."""
    stage.server.configure(resources=resources, latency_ms=0, latency_jitter_ms=0, rate_limit=0, day=1)
    ids = [resource_id(n % resources) for n in range(requests)]
    paths = [f"/items/{rid}/details" for rid in ids]
    url, c = stage.server.url, stage.concurrency
    loop = load_settings().sync_event_loop  # the client's loop, as the sync runs it
    bare: list[dict] = []
    bare_uvloop: list[dict] = []
    parsed: list[dict] = []
    client: list[dict] = []
    for _ in range(rounds):
        bare.append(_measure(stage, "bare aiohttp", lambda: bare_aiohttp_loop(url, paths, c), requests, log))
        bare_uvloop.append(
            _measure(stage, "bare aiohttp, uvloop", lambda: bare_aiohttp_loop(url, paths, c), requests, log, "uvloop")
        )
        parsed.append(
            _measure(
                stage,
                "bare aiohttp, uvloop, parsed",
                lambda: bare_aiohttp_loop(url, paths, c, parse=True),
                requests,
                log,
                "uvloop",
            )
        )
        client.append(_measure(stage, "client", lambda: _client(url, ids, c), requests, log, loop))
    few = paths[:HTTPX_REQUESTS]  # ten times slower: a shorter run says as much
    httpx_row = _measure(stage, "bare httpx", lambda: _bare_httpx(url, few, c), len(few), log)
    rows = [_median(bare), _median(bare_uvloop), _median(parsed), _median([httpx_row]), _median(client)]
    baseline = max(rows[0]["requests_per_s"], rows[1]["requests_per_s"])
    for row in rows:
        row["vs_aiohttp"] = row["requests_per_s"] / baseline
    return rows
