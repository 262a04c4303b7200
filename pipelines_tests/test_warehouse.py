import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipelines.core.outcomes import BatchResult, Member, Outcome, ResourceUpdate, SubJobResult
from pipelines.source.client import CallMeter
from pipelines.warehouse.migrate import prepare
from pipelines.warehouse.schema import batch_ledger, job_set, resources, sub_job_outcomes, watchlist
from pipelines.warehouse.store import BatchRecord, Warehouse, create_warehouse_engine
from pipelines.warehouse.upsert import newer_or_same, resources_set, upsert

DAY = date(2026, 1, 2)
T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(warehouse_url):
    return Warehouse(create_warehouse_engine(warehouse_url))


def _sql(dialect_name: str, stmt) -> str:
    dialect = sa.create_engine(f"{dialect_name}://").dialect if dialect_name == "sqlite" else None
    if dialect is None:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()
    return str(stmt.compile(dialect=dialect))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_upsert_is_one_guarded_statement(dialect):
    rows = [{"resource_id": f"r{i}", "status": "live", "last_checked": T0} for i in range(3)]
    stmt = upsert(dialect, resources, rows, set_=resources_set, where=newer_or_same)
    sql = _sql(dialect, stmt)
    assert sql.count("INSERT INTO resources") == 1
    assert "ON CONFLICT (resource_id) DO UPDATE" in sql
    assert "coalesce(excluded.details, resources.details)" in sql
    assert "WHERE resources.last_checked <= excluded.last_checked" in sql
    assert "r1" not in sql  # values are bound parameters, never inlined


def test_upsert_refuses_other_dialects():
    with pytest.raises(ValueError, match="mysql"):
        upsert("mysql", resources, [{"resource_id": "x"}])


def _batch(ids, *, changed=True, version=1) -> BatchResult:
    result = BatchResult()
    for rid in ids:
        outcome = Outcome.CHANGED if changed else Outcome.UNCHANGED
        result.results.append(SubJobResult(rid, outcome, "new" if changed else "same_fingerprint"))
        details = {"id": rid, "version": version} if changed else None
        result.updates.append(ResourceUpdate(rid, "live", f"fp{version}", None, {"version": version}, details, changed))
    return result


def _record(store, ids, batch_no=0, when=T0, result=None, run_id="run-1", **kw):
    meter = CallMeter()
    meter.calls["probe"] = len(ids)
    token = f"token-{when.timestamp()}-{batch_no}"
    assert store.ledger.claim_batch(DAY, batch_no, run_id, token, 60, when, force=True)
    members = {rid: Member(rid) for rid in ids}
    rec = BatchRecord(
        partition=DAY,
        batch_no=batch_no,
        result=result or _batch(ids, **kw),
        members=members,
        meter=meter,
        started_at=when,
        finished_at=when,
        run_id=run_id,
        claim_token=token,
    )
    store.ledger.record_batch(rec)


def test_record_batch_is_idempotent(store):
    ids = [f"r{i:03d}" for i in range(100)]
    _record(store, ids)
    _record(store, ids)
    assert store.reports.count(resources) == 100
    assert store.reports.count(sub_job_outcomes, partition=DAY) == 100
    assert store.reports.count(batch_ledger, partition=DAY) == 1
    summary = store.reports.partition_summary(DAY)
    assert summary["changed"] == summary["new"] == 100
    assert summary["calls"] == 100


def test_an_older_write_never_overwrites_newer_data(store):
    _record(store, ["r1"], version=2, when=T0)
    _record(store, ["r1"], version=1, when=T0 - timedelta(hours=1))  # a slow, older run lands last
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(resources.c.fingerprint, resources.c.details)).one()
    assert row.fingerprint == "fp2"
    assert row.details == {"id": "r1", "version": 2}


def test_an_unchanged_check_keeps_details_and_last_changed(store):
    _record(store, ["r1"], version=1, when=T0)
    _record(store, ["r1"], changed=False, version=1, when=T0 + timedelta(days=1))
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(resources)).one()
    assert row.details == {"id": "r1", "version": 1}
    assert _utc(row.last_changed) == T0
    assert _utc(row.last_checked) == T0 + timedelta(days=1)


def test_job_set_is_stable_and_append_only(store):
    store.watchlist.upsert_watchlist([f"r{i:04d}" for i in range(250)], "listing", DAY)
    assert store.job_sets.build_job_set(DAY, 100)["watchlist"] == 250
    before = _assignments(store)
    assert sum(store.job_sets.build_job_set(DAY, 100).values()) == 0  # a re-run adds nothing and renumbers nothing
    assert _assignments(store) == before
    store.watchlist.upsert_watchlist(["r0000x", "r9999"], "listing", DAY)  # new ids sort anywhere
    assert store.job_sets.build_job_set(DAY, 100)["watchlist"] == 2
    after = _assignments(store)
    assert {k: after[k] for k in before} == before
    assert after["r0000x"] == after["r9999"] == 3
    assert store.job_sets.job_set_counts(DAY) == {"sub_jobs": 252, "batches": 4}
    assert store.job_sets.pending_batches(DAY) == [0, 1, 2, 3]


@pytest.mark.parametrize("size", [1, 7, 100, 1000])
def test_the_job_set_is_full_batches_in_id_order_numbered_from_the_next(store, size):
    ids = [f"r{i:04d}" for i in range(250)]
    store.watchlist.upsert_watchlist(ids[::-1], "listing", DAY)
    store.job_sets.build_job_set(DAY, size)
    numbered = _assignments(store)
    assert numbered == {rid: n // size for n, rid in enumerate(ids)}
    store.watchlist.upsert_watchlist(["r0000x", "r9999", "a"], "listing", DAY)
    first = max(numbered.values()) + 1
    assert store.job_sets.build_job_set(DAY, size)["watchlist"] == 3
    added = {rid: b for rid, b in _assignments(store).items() if rid not in numbered}
    assert added == {rid: first + n // size for n, rid in enumerate(["a", "r0000x", "r9999"])}


def test_pending_batches_skip_completed_unless_forced(store):
    store.watchlist.upsert_watchlist([f"r{i:04d}" for i in range(300)], "listing", DAY)
    store.job_sets.build_job_set(DAY, 100)
    _record(store, [m.resource_id for m in store.ledger.batch_members(DAY, 1)], batch_no=1)
    assert store.job_sets.pending_batches(DAY) == [0, 2]
    assert store.job_sets.pending_batches(DAY, force=True) == [0, 1, 2]


def test_gone_resources_leave_the_watchlist(store):
    store.watchlist.upsert_watchlist(["a", "b"], "listing", DAY)
    result = BatchResult()
    result.results.append(SubJobResult("a", Outcome.GONE, "HTTP 410", http_status=410))
    result.updates.append(ResourceUpdate("a", "gone"))
    _record(store, ["a"], result=result)
    assert store.watchlist.watchlist_counts() == {"active": 1, "inactive": 1}


def _assignments(store):
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(job_set.c.resource_id, job_set.c.batch_no)).all())


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive UTC, PostgreSQL an aware time in the session's zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_runs_starting_at_once_on_a_new_postgresql_warehouse_all_get_their_tables(pg_warehouse_url):
    """A backfill's runs create the tables together (and record their revision); without the advisory lock all but one fail."""
    engines = [create_warehouse_engine(pg_warehouse_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def create(engine) -> None:
        start.wait()
        try:
            prepare(engine)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    assert set(sa.inspect(sa.create_engine(pg_warehouse_url)).get_table_names()) >= {"resources", "batch_ledger"}


HOSTILE_MEMBERS = ["r1", "a,b", "{x}", 'q"uote', "back\\slash", "it's", "NULL", "", "é🙂", "semi;colon", "sp ace"]


def test_one_of_finds_exactly_the_ids_named(warehouse_url):
    """A batch's ids in one array parameter (PostgreSQL) or an IN list (SQLite): the same rows,
    for ids an array literal would have to quote, and none for no ids at all."""
    from pipelines.warehouse.one_of import one_of

    engine = create_warehouse_engine(warehouse_url)
    prepare(engine)
    stored = [*HOSTILE_MEMBERS, "other", "r10"]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(watchlist),
            [{"resource_id": rid, "source": "csv", "added_on": DAY, "last_listed_on": DAY} for rid in stored],
        )
    dialect = engine.dialect.name
    query = sa.select(watchlist.c.resource_id).where(one_of(dialect, watchlist.c.resource_id, "ids"))
    for wanted in (HOSTILE_MEMBERS, ["r1"], ["absent", "r10"], []):
        with engine.connect() as conn:
            assert sorted(conn.scalars(query, {"ids": wanted})) == sorted(set(wanted) & set(stored)), wanted
    if dialect == "postgresql":  # one parameter, whatever the number of ids
        assert "ANY" in _sql("postgresql", query) and "IN" not in _sql("postgresql", query)
