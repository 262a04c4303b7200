"""The warehouse when the data and the operator misbehave (SQLite and PostgreSQL): unusable ids,
gone resources served again, a mixed source, two job set builds at once, abandoned claims and
their calls, old narrow columns, tools pointed at a warehouse that is not there."""

import threading
from datetime import UTC, date, datetime

import orjson
import pytest
import sqlalchemy as sa

from pipelines.core.outcomes import BatchResult, Member, Outcome, ResourceUpdate, SubJobResult
from pipelines.source.client import CallMeter
from pipelines.warehouse.migrate import WarehouseVersionError, upgrade
from pipelines.warehouse.schema import job_set, resources, watchlist
from pipelines.warehouse.store import (
    BatchRecord,
    SourceMismatchError,
    Warehouse,
    WarehouseNotFoundError,
    create_warehouse_engine,
    open_existing,
)
from pipelines.warehouse.upsert import json_document

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(warehouse_url):
    return Warehouse(create_warehouse_engine(warehouse_url))


def meter(probes: int, details: int = 0) -> CallMeter:
    m = CallMeter()
    m.calls.update({"probe": probes, "detail": details})
    return m


def write(store, day, batch_no, results, updates=(), token="tok", run="run-1", calls=None):
    assert store.ledger.claim_batch(day, batch_no, run, token, 60, T0)
    members = {r.resource_id: Member(r.resource_id) for r in results}
    rec = BatchRecord(
        partition=day,
        batch_no=batch_no,
        result=BatchResult(list(results), list(updates)),
        members=members,
        meter=calls or meter(len(results)),
        started_at=T0,
        finished_at=T0,
        run_id=run,
        claim_token=token,
    )
    store.ledger.record_batch(rec)


def test_unusable_ids_are_refused_at_the_watchlist_by_name(store):
    ids = ["ok", "a/b", "NA", "", "new\nline", "nul\x00", "x" * 200, "y" * 201, "ok"]
    update = store.watchlist.upsert_watchlist(ids, "csv", D1)
    assert (update.listed, update.refused) == (4, 4)  # ok, a/b, NA, 200 x's (ok once)
    problems = dict(update.refused_sample)
    assert problems["''"] == "is empty"
    assert "control character '\\n'" in problems[repr("new\nline")]
    assert "control character '\\x00'" in problems[repr("nul\x00")]
    assert "201 characters" in problems[repr("y" * 80 + "…")]
    with store.engine.connect() as conn:
        stored = set(conn.execute(sa.select(watchlist.c.resource_id)).scalars())
    assert stored == {"ok", "a/b", "NA", "x" * 200}


def test_a_gone_resource_served_again_is_reactivated(store):
    store.watchlist.upsert_watchlist(["a", "b", "c"], "listing", D1)
    gone = [SubJobResult("a", Outcome.GONE, "HTTP 404", error_class=None, http_status=404)]
    dead = [SubJobResult("b", Outcome.DEAD, "poison", error_class="poison", http_status=200)]
    write(store, D1, 0, [*gone, *dead, SubJobResult("c", Outcome.UNCHANGED, "same")], [ResourceUpdate("a", "gone")])
    assert store.watchlist.watchlist_counts() == {"active": 1, "inactive": 2}
    assert store.watchlist.upsert_watchlist(["a", "b", "c"], "listing", D1).reactivated == 0  # the same day: not yet
    again = store.watchlist.upsert_watchlist(["a", "b", "c"], "listing", D2)  # the listing serves a (and b) again
    assert again.reactivated == 1  # a is back; b stays out: it is in the dead letter (replay it)
    with store.engine.connect() as conn:
        active = dict(conn.execute(sa.select(watchlist.c.resource_id, watchlist.c.active)).all())
    assert active == {"a": True, "b": False, "c": True}
    store.job_sets.build_job_set(D2, 100)
    with store.engine.connect() as conn:
        assert set(conn.execute(sa.select(job_set.c.resource_id).where(job_set.c.partition == D2)).scalars()) == {
            "a",
            "c",
        }


def test_the_sample_api_never_mixes_into_a_real_sources_warehouse(store):
    store.runs.claim_source("https://api.example.com/v2")
    store.runs.claim_source("https://api.example.com/v2")  # the same source: fine
    store.runs.claim_source("https://api.example.com/v3")  # an API that moved: fine
    with pytest.raises(SourceMismatchError, match="embedded sample API.*client.base_url"):
        store.runs.claim_source("sample")


def test_a_real_source_never_mixes_into_the_demos_warehouse(store):
    store.runs.claim_source("sample")
    with pytest.raises(SourceMismatchError, match="demo data"):
        store.runs.claim_source("https://api.example.com")


def test_two_job_set_builds_of_one_day_at_once(store):
    store.watchlist.upsert_watchlist([f"r{i:05d}" for i in range(20_000)], "listing", D1)
    errors, results = [], []

    def build():
        try:
            results.append(store.job_sets.build_job_set(D1, 100))
        except Exception as exc:  # a raw UniqueViolation, before
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r["watchlist"] for r in results) == 20_000 or store.engine.dialect.name == "sqlite"
    counts = store.job_sets.job_set_counts(D1)
    assert counts == {"sub_jobs": 20_000, "batches": 200}  # each sub-job once, consistently numbered
    with store.engine.connect() as conn:
        per_batch = conn.execute(
            sa.select(job_set.c.batch_no, sa.func.count()).where(job_set.c.partition == D1).group_by(job_set.c.batch_no)
        ).all()
    assert {n for _, n in per_batch} == {100}


def test_job_set_builds_of_two_sources_on_one_day_never_wait_on_each_other(pg_warehouse_url):
    """The build's lock is the source's day: held by one source, another source's build of the
    same day goes ahead, while another run of the same source's day waits for it."""
    held, other_source, same_source = (
        Warehouse(create_warehouse_engine(pg_warehouse_url, namespace)) for namespace in ("locka", "lockb", "locka")
    )
    other_source.watchlist.upsert_watchlist(["a", "b"], "listing", D1)
    try:
        with held.job_sets._job_set_lock(D1):
            other = threading.Thread(target=other_source.job_sets.build_job_set, args=(D1, 10))
            other.start()
            other.join(timeout=30)
            assert not other.is_alive(), "another source's build waited on this source's lock"
            same = threading.Thread(target=same_source.job_sets.build_job_set, args=(D1, 10))
            same.start()
            same.join(timeout=1.0)
            assert same.is_alive(), "a second build of the same source's day did not wait"
        same.join(timeout=30)
        assert not same.is_alive()
        assert other_source.job_sets.job_set_counts(D1) == {"sub_jobs": 2, "batches": 1}
    finally:
        for store in (held, other_source, same_source):
            store.engine.dispose()
        with sa.create_engine(pg_warehouse_url).begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS locka CASCADE; DROP SCHEMA IF EXISTS lockb CASCADE"))


def test_the_calls_of_a_run_that_died_count_in_the_days_figures(store):
    store.watchlist.upsert_watchlist(["a", "b"], "listing", D1)
    store.job_sets.build_job_set(D1, 1)
    # run 1's client writes down a block of 32 calls before sending, claims batch 0, and dies
    store.spend.record_spent(D1, "sync", "client-1", "run-1", 32, final=False)
    assert store.ledger.claim_batch(D1, 0, "run-1", "tok-1", 60, T0)
    # or is stopped: its claim is given back at once, and another run takes the batch
    assert store.ledger.release_claim(D1, 0, "tok-1", T0)
    assert store.ledger.claim_batch(D1, 0, "run-2", "tok-2", 60, T0)
    store.spend.record_spent(D1, "sync", "client-2", "run-2", 32, final=False)
    rec = BatchRecord(
        partition=D1,
        batch_no=0,
        result=BatchResult([SubJobResult("a", Outcome.CHANGED, "new")]),
        members={"a": Member("a")},
        meter=meter(1, 1),
        started_at=T0,
        finished_at=T0,
        run_id="run-2",
        claim_token="tok-2",
    )
    store.ledger.record_batch(rec)
    write(store, D1, 1, [SubJobResult("b", Outcome.CHANGED, "new")], token="tok-3", run="run-2", calls=meter(1, 1))
    store.spend.record_spent(D1, "sync", "client-2", "run-2", 4, final=True)  # run 2 closes: the exact count
    store.spend.record_spent(D1, "sync", "client-2", "run-2", 64, final=False)  # a late reservation changes nothing
    store.spend.record_spent(D1, "listing", "client-3", "run-2", 3, final=True)  # the watchlist's listing
    summary = store.reports.partition_summary(D1)
    assert summary["calls"] == 32 + 4  # the dead run's reservation holds at least every call it sent
    assert summary["abandoned_calls"] == 32  # not in any completed batch's figures
    assert summary["listing_calls"] == 3 and summary["unclosed_calls"] == 32


def test_nul_characters_become_replacement_characters_for_postgresql():
    rows = [{"a": "x\x00y", "b": "\\u0000 is text", "c": "\\\x00", "d": {"nested": ["\x00"]}}]
    assert orjson.loads(json_document(rows)) == [
        {"a": "x\ufffdy", "b": "\\u0000 is text", "c": "\\\ufffd", "d": {"nested": ["\ufffd"]}}
    ]


def test_a_narrow_etag_column_of_an_older_warehouse_is_widened_by_the_migration(pg_warehouse_url):
    engine = create_warehouse_engine(pg_warehouse_url)
    Warehouse(engine)
    with engine.begin() as conn:  # as an older release created it, with no revision recorded
        conn.execute(sa.text("ALTER TABLE resources ALTER COLUMN etag TYPE VARCHAR(200)"))
        conn.execute(sa.text("DROP TABLE alembic_version"))
    with pytest.raises(WarehouseVersionError, match="migrate_warehouse"):
        Warehouse(engine)
    upgrade(engine)  # the baseline revision widens it
    store = Warehouse(engine)
    long_etag = '"' + "e" * 5000 + '"'
    update = ResourceUpdate("r", "live", "fp", long_etag, {"id": "r"}, None)
    write(store, D1, 0, [SubJobResult("r", Outcome.UNCHANGED, "same")], [update])
    with engine.connect() as conn:
        assert conn.execute(sa.select(resources.c.etag)).scalar_one() == long_etag


def test_read_only_tools_never_create_a_warehouse(tmp_path, pg_database):
    missing = tmp_path / "typo.db"
    with pytest.raises(WarehouseNotFoundError, match="does not exist"):
        open_existing(f"sqlite:///{missing}")
    assert not missing.exists()
    bad_db = sa.engine.make_url(pg_database).set(database="no_such_warehouse_db", password="hidden-pw")
    with pytest.raises(WarehouseNotFoundError, match="no_such_warehouse_db") as info:
        open_existing(bad_db.render_as_string(hide_password=False))
    assert "hidden-pw" not in str(info.value)
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(WarehouseNotFoundError, match="not a pipelines warehouse"):
        open_existing(f"sqlite:///{empty}")
    Warehouse(create_warehouse_engine(f"sqlite:///{tmp_path / 'real.db'}"))
    assert open_existing(f"sqlite:///{tmp_path / 'real.db'}").reports.count(resources) == 0
