"""Ids are data, and odd data is stored: end to end on PostgreSQL, against the hostile API.

A CSV watchlist of hostile ids (URL syntax, NA-like words, a separator, control characters, one
too long) is synced from an API that serves any id, with NUL characters in some records, a
non-JSON body holding NULs, and kilobyte ETags: every id that can be carried is synced under its
own URL and stored whole, the others are refused by name, and no batch fails.
"""

from datetime import date
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from dagster import instance_for_test, materialize

from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.resources import WarehouseResource
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import resources
from pipelines_tests.helpers import api_resource
from pipelines_tests.hostile_api import HostileApi

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
D1, D2 = "2026-01-01", "2026-01-02"

GOOD = [
    "a/b",
    "x/details",
    "q?fields=secret",
    "hash#frag",
    "pct%41",
    ".",
    "..",
    "../admin",
    "NA",
    "null",
    "None",
    "nan",
    "#N/A",
    " spaced ",
    "a,b",  # the bulk probe's separator
    "ünï",
    "0042",
    "x" * 200,  # the longest an id may be
]
BAD = {"new\nline": "control character", "nul\x00byte": "control character", "y" * 201: "201 characters"}
NUL_RECORD, GARBAGE = "nul-record", "garbage-body"
PLAIN = [f"p{i:04d}" for i in range(300)]


def write_csv(path, ids):
    def cell(rid: str) -> str:
        return '"' + rid.replace('"', '""') + '"'

    path.write_text("resource_id\n" + "\n".join(cell(r) for r in ids) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def api():
    server = HostileApi()
    yield server
    server.close()


@pytest.mark.parametrize("strategy", ["projected", "bulk"])
def test_hostile_ids_and_odd_data_sync_on_postgres(api, pg_warehouse_url, tmp_path, strategy):
    api.mode.nul_ids = {NUL_RECORD}
    api.mode.garbage_ids = {GARBAGE}
    api.mode.etag_bytes = 3000
    ids = [*GOOD, *BAD, NUL_RECORD, GARBAGE, *PLAIN]
    csv = write_csv(tmp_path / "ids.csv", ids)
    res = {
        "source_api": api_resource(api.url, {"probe.strategy": strategy}),
        "warehouse": WarehouseResource(url=pg_warehouse_url),
    }
    config = {
        "ops": {"watchlist": {"config": {"csv_path": str(csv)}}},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    with instance_for_test() as instance:
        result = materialize(ASSETS, partition_key=D1, resources=res, instance=instance, run_config=config)
    assert result.success  # no batch failed: not on a NUL, not on a long ETag, not on an id
    store = res["warehouse"].store()
    outcomes = store.reports.outcomes_of(date.fromisoformat(D1))
    carried = [*GOOD, NUL_RECORD, *PLAIN]
    assert {rid: outcomes.get(rid) for rid in carried} == dict.fromkeys(carried, "changed")
    assert outcomes[GARBAGE] == "dead"  # poison, with its body excerpt (NULs and all) in the dead letter
    assert not set(BAD) & set(outcomes)  # refused at the watchlist, by name:
    watch = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["watchlist"])
    assert watch.materialization.metadata["refused"].value == len(BAD)
    named = watch.materialization.metadata["refused_ids"].value  # also logged, as warnings
    for rid, why in BAD.items():
        assert repr(rid[:20])[:-1] in named and why in named, rid

    with store.engine.connect() as conn:
        rows = {r.resource_id: r for r in conn.execute(sa.select(resources))}
    for rid in carried:  # each stored under its own id, with its own record
        assert rows[rid].details["id"] == rid and rows[rid].details["name"].endswith(rid)
    assert rows[NUL_RECORD].details["name"] == f"a NUL \ufffd inside {NUL_RECORD}"  # PostgreSQL holds no NUL
    dead = store.queues.dead_letters(resource_id=GARBAGE)[0]
    assert dead["error_class"] == "poison" and "\ufffd oops" in dead["body_excerpt"]

    targets = api.targets()
    single = [t for t in targets if t.startswith("/items/")]
    for rid in GOOD:  # each id reached its own URL, and only it
        segment = quote(rid, safe="") if rid.strip(".") else rid.replace(".", "%2E")
        if strategy == "projected" or "," in rid:
            assert sum(t.split("?")[0] == f"/items/{segment}" for t in single) == 1, rid
        assert sum(t == f"/items/{segment}/details" for t in single) == 1, rid
    assert all(t.count("/") <= 3 for t in single)
    if strategy == "bulk":  # the id holding the separator was probed alone, never split by the server
        bulk = [t for t in targets if t.startswith("/items?ids=")]
        assert bulk and not any("a%2Cb" in t or ",a,b," in t for t in bulk)

    if strategy == "projected":  # the 3,000-byte ETag was stored whole and sent back as it came
        assert len(rows["p0000"].etag) == 3000
        api.reset()
        res["source_api"] = api_resource(api.url, {"probe.strategy": "conditional"})
        with instance_for_test() as instance:
            assert materialize(ASSETS, partition_key=D2, resources=res, instance=instance, run_config=config).success
        sent = [s.headers.get("If-None-Match") for s in api.seen if s.target.startswith("/items/p0000?")]
        assert sent == [rows["p0000"].etag]
