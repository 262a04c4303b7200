"""A real REST server this project did not write, from a registry: ``json-server`` 0.17.4 (npm),
installed by the test itself, declared in YAML alone, synced with every strategy it supports.

Why it fits: it is the REST server people point tools at to try them, and it has what real
APIs have and our sample does not: ``Link`` headers only for a request that names a page,
``X-Total-Count``, ``_embed=`` to carry children in a listing, repeated ``?id=1&id=2`` filters
as its bulk read, ``updated_at_gte=`` compared as text (so the filter's time format matters),
weak ETags with 304s, nested routes for the detail (``/products/{id}/variants``), integer ids
and 404s for deleted records. Over three days with changes, deletions and additions, the
warehouse must hold its truth (fingerprints and variants), and each strategy's calls, counted
in the server's own request log, must be that strategy's minimum.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from dagster import instance_for_test

from pipelines.sample_api.process import free_port
from pipelines.sample_api.world import unit
from pipelines.source.declaration import declare
from pipelines.sync.resources import WarehouseResource, declared_source
from pipelines.warehouse.schema import resources
from pipelines_tests.test_sync_e2e import sync_day

VERSION = "0.17.4"
READY = "ready-check"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # its request log is coloured
N, CHANGE, GONE, ADDED = 400, 0.2, 0.02, 20
PAGE, BULK = 100, 50


@pytest.fixture(scope="module")
def json_server_bin(tmp_path_factory) -> Path:
    """``json-server`` installed from the npm registry into a folder of the test's."""
    npm = shutil.which("npm")
    assert npm, "the json-server test needs Node.js and npm on PATH"
    folder = tmp_path_factory.mktemp("json-server")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"json-server@{VERSION}"],
        cwd=folder,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return folder / "node_modules" / ".bin" / "json-server"


class JsonServer:
    """One day's json-server over a db.json of that day's world; its request log counted."""

    def __init__(self, binary: Path, folder: Path) -> None:
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def serve(self, db: dict) -> None:
        self.stop()
        (self.folder / "db.json").write_text(json.dumps(db))
        self.log = (self.folder / "requests.log").open("w")
        self.process = subprocess.Popen(
            [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "db.json"],
            cwd=self.folder,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/{READY}", timeout=1)  # a path of no resource: left out of the count
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "json-server did not start"
                time.sleep(0.2)

    def requests(self) -> list[str]:
        """The request lines json-server logged (``GET /products?... 200 ...``)."""
        self.log.flush()
        lines = ANSI.sub("", (self.folder / "requests.log").read_text()).splitlines()
        return [line.split()[1] for line in lines if line.startswith(("GET ", "POST "))]

    def calls(self) -> list[str]:
        return [target for target in self.requests() if READY not in target]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.log.close()
            self.process = None


def world(day: int) -> dict:
    """The shop on ``day``: products with their variants, a share of them changed that day,
    some deleted over the days, some added on day 3."""
    products, variants = [], []
    ids = list(range(1, N + 1)) + (list(range(N + 1, N + ADDED + 1)) if day >= 3 else [])
    for pid in ids:
        if any(unit(5, "gone", str(pid), d) < GONE for d in range(2, day + 1)):
            continue
        version = max([d for d in range(1, day + 1) if d == 1 or unit(5, "change", str(pid), d) < CHANGE])
        stamp = f"2026-01-{version:02d}T{int(unit(5, 'hour', str(pid), version) * 20):02d}:00:00.000Z"
        products.append({"id": pid, "title": f"product {pid}", "version": version, "updated_at": stamp})
        variants += [{"id": pid * 10 + k, "productId": pid, "price": round(version * 1.5 + k, 2)} for k in range(2)]
    return {"products": products, "variants": variants}


def changed_on(day: int) -> set[int]:
    before = {p["id"]: p["updated_at"] for p in world(day - 1)["products"]} if day > 1 else {}
    return {p["id"] for p in world(day)["products"] if before.get(p["id"]) != p["updated_at"]}


BASE = {
    "id": {"path": "id", "type": "integer"},
    "fingerprint": ["updated_at"],
    "projection": None,
    "conditional": None,
    "probe": {"strategy": "projected", "path": "/products/{id}", "data_selector": "", "fields": ["id", "updated_at"]},
    "bulk_probe": {
        "path": "/products",
        "ids_param": "id",
        "ids_style": "repeated",
        "max_ids": BULK,
        "data_selector": "",
        "missing_selector": None,
    },
    "detail": {"path": "/products/{id}/variants", "shape": "list"},
    "listing": {
        "path": "/products",
        "data_selector": "",
        "page_size_param": "_limit",
        "page_size": PAGE,
        "params": {"_page": "1"},  # its Link header comes only to a request that names a page
        "paginator": {"type": "link_header"},
        "total_header": "X-Total-Count",
        "fields": ["id", "updated_at"],
    },
}
FILTER = {
    "param": "updated_at_gte",
    "cursor_path": "updated_at",
    "format": "iso8601_ms_z",  # compared as text with its own ...000Z: the format must be its own
    "overlap_seconds": 3600,
    "reconcile_every_days": 2,
}
STRATEGIES = {
    "projected": {},
    "conditional": {
        "probe.strategy": "conditional",
        "conditional": {"etag_header": "ETag", "request_header": "If-None-Match", "not_modified_status": 304},
    },
    "bulk": {"probe.strategy": "bulk"},
    "listing": {"probe.strategy": "listing"},
    "changed_since": {"probe.strategy": "changed_since", "listing.changed_since": FILTER},
    "embedded": {
        "probe.strategy": "listing",
        "detail.embedded": {
            "carried_by": "listing",
            "params": {"_embed": "variants"},
            "path": "variants",
            "max_bytes": 4096,
        },
    },
}


def expected_calls(strategy: str, day: int, tracked: set[int], live: dict[int, dict], changed: int) -> int:
    """The fewest calls json-server allows the strategy on ``day``, ``tracked`` the ids going
    into it, ``live`` its products, ``changed`` the new or changed ones."""
    pages = math.ceil(len(live) / PAGE)
    details = 0 if strategy == "embedded" else changed
    everyone = len(tracked | set(live))  # the new ids the listing finds are synced the same day
    if strategy in ("projected", "conditional"):
        return pages + everyone + details  # the watchlist's listing, a probe an id, a detail a change
    if strategy == "bulk":
        return pages + math.ceil(len(tracked) / BULK) + math.ceil(len(set(live) - tracked) / BULK) + details
    if filtered_day(strategy, day):  # only what changed since yesterday's last marker, less an hour
        since = max(p["updated_at"] for p in world(day - 1)["products"])
        since = f"{since[:11]}{int(since[11:13]) - 1:02d}{since[13:]}"
        served = [p for p in live.values() if p["updated_at"] >= since]
        return max(1, math.ceil(len(served) / PAGE)) + details
    lost = tracked - set(live)
    return pages + math.ceil(len(lost) / BULK) + details  # what it no longer lists, probed together


def filtered_day(strategy: str, day: int) -> bool:
    """changed_since lists only what changed on its second day (the reconcile, every 2, lists all)."""
    return strategy == "changed_since" and day == 2


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_json_server_synced_to_its_truth_at_each_strategys_minimum(
    strategy, json_server_bin, tmp_path, sqlite_warehouse_url
):
    server = JsonServer(json_server_bin, tmp_path)
    server.serve(world(1))
    declared = declare(server.url, copy.deepcopy({**BASE, **STRATEGIES[strategy]}), name="jsonserver")
    path = tmp_path / "jsonserver.yaml"
    path.write_text(yaml.safe_dump(declared.model_dump(mode="json")))
    res = {
        "source_api": declared_source(str(path)),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    store = res["warehouse"].store()
    tracked: set[int] = set()
    try:
        with instance_for_test() as instance:
            for day in (1, 2, 3):
                truth = world(day)
                server.serve(truth)
                figures = sync_day(res, date(2026, 1, day).isoformat(), instance, batches_per_step=100)
                calls = server.calls()
                live = {p["id"]: p for p in truth["products"]}
                changed = len(changed_on(day))
                expected = expected_calls(strategy, day, tracked, live, changed)
                print(f"{strategy} day {day}: {len(calls)} calls (minimum {expected}), {figures['changed']} changed")
                with store.engine.connect() as conn:
                    rows = {int(r.resource_id): r for r in conn.execute(sa.select(resources)) if r.status == "live"}
                variants: dict[int, list] = {}
                for v in truth["variants"]:
                    variants.setdefault(v["productId"], []).append(v)
                assert {pid: rows[pid].details for pid in live} == {pid: variants[pid] for pid in live}
                assert figures["changed"] == changed
                if filtered_day(strategy, day):  # a filtered listing sees no deletion: the reconcile will
                    assert set(rows) >= set(live) and figures["gone"] == 0
                    tracked |= set(live)
                else:
                    assert set(rows) == set(live) and figures["gone"] == len(tracked - set(live))
                    tracked = set(live)
                assert len(calls) == expected, calls[:8]
    finally:
        server.stop()
