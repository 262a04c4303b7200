"""Ledger claims, the retry queue and the dead letter in the warehouse (SQLite and PostgreSQL)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipelines.core.errors import ErrorClass, SourceError
from pipelines.core.outcomes import BatchResult, Member, Outcome, ResourceUpdate, SubJobResult
from pipelines.source.client import CallMeter
from pipelines.warehouse.schema import batch_ledger, resources, retry_queue, sub_job_outcomes
from pipelines.warehouse.store import BatchRecord, DeadLetterFilter, LostClaimError, Warehouse, create_warehouse_engine

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(warehouse_url):
    return Warehouse(create_warehouse_engine(warehouse_url))


def test_one_batch_one_owner(store):
    assert store.ledger.claim_batch(D1, 0, "run-a", "tok-a", 60, T0)
    assert not store.ledger.claim_batch(D1, 0, "run-b", "tok-b", 60, T0)  # a live lease of another run
    assert store.ledger.claim_batch(D1, 0, "run-a", "tok-a2", 60, T0)  # its own run may take it back (step retry)
    assert not store.ledger.renew_claim(D1, 0, "tok-a", 60, T0)  # the old token lost it
    assert store.ledger.renew_claim(D1, 0, "tok-a2", 60, T0)
    later = T0 + timedelta(seconds=61)
    assert store.ledger.claim_batch(D1, 0, "run-b", "tok-b", 60, later)  # the lease ran out: the owner died


def test_a_write_after_losing_the_claim_is_rolled_back_whole(store):
    assert store.ledger.claim_batch(D1, 0, "run-a", "tok-a", 1, T0)
    assert store.ledger.claim_batch(D1, 0, "run-b", "tok-b", 60, T0 + timedelta(seconds=5))
    with pytest.raises(LostClaimError):
        store.ledger.record_batch(_record(["x", "y"], "run-a", "tok-a"))
    assert store.reports.count(resources) == store.reports.count(sub_job_outcomes) == 0
    store.ledger.record_batch(_record(["x", "y"], "run-b", "tok-b"))
    assert store.reports.count(resources) == 2
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(batch_ledger.c.run_id, batch_ledger.c.status)).one() == ("run-b", "completed")


def test_completed_batches_are_claimed_again_only_when_forced(store):
    assert store.ledger.claim_batch(D1, 0, "run-a", "tok-a", 60, T0)
    store.ledger.record_batch(_record(["x"], "run-a", "tok-a"))
    later = T0 + timedelta(hours=1)
    assert not store.ledger.claim_batch(D1, 0, "run-b", "tok-b", 60, later)
    assert store.ledger.claim_batch(D1, 0, "run-b", "tok-b", 60, later, force=True)


def test_failures_go_to_their_tier_and_come_back(store):
    store.watchlist.upsert_watchlist(["ok", "flaky", "bad"], "listing", D1)
    store.job_sets.build_job_set(D1, 100)
    assert store.ledger.claim_batch(D1, 0, "run-1", "t1", 60, T0)
    results = [
        SubJobResult("ok", Outcome.CHANGED, "new"),
        SubJobResult(
            "flaky",
            Outcome.RETRY,
            "tier 2 day 1 of 3: HTTP 503",
            error_class="transient",
            http_status=503,
            attempts=4,
            error=_error(503),
            tier2_days_used=1,
        ),
        SubJobResult(
            "bad",
            Outcome.DEAD,
            "poison: not retried: body is not JSON",
            error_class="poison",
            http_status=200,
            attempts=1,
            error=_error(200),
        ),
    ]
    store.ledger.record_batch(_record(["ok", "flaky", "bad"], "run-1", "t1", results=results))
    # tier 3 at once, with the request and response, no secret; it leaves the watchlist
    (entry,) = store.queues.dead_letters()
    assert entry["id"] == "2026-01-01/bad" and entry["error_class"] == "poison"
    assert entry["url"] == "http://api/items/x" and entry["request_headers"]["Authorization"] == "[redacted]"
    assert entry["body_excerpt"] == "{bro" and entry["history"][0]["batch_id"] == "2026-01-01#00000"
    assert store.watchlist.watchlist_counts() == {"active": 2, "inactive": 1}
    # tier 2: due tomorrow, scheduled by retry_queue[D2], first in job_set[D2]
    assert store.queues.schedule_retries(D2)["retry"] == 1
    assert store.job_sets.build_job_set(D2, 100) == {"watchlist": 1, "retry": 1, "replay": 0}
    members = {m.resource_id: m for m in store.ledger.batch_members(D2, 0)}
    assert members["flaky"].origin == "retry" and members["flaky"].tier2_days_used == 1
    assert len(members["flaky"].history) == 1
    assert members["ok"].origin == "watchlist" and "bad" not in members
    c = store.reports.conservation(D1)
    assert (c["without_outcome"], c["retry_without_queue_entry"], c["dead_without_dead_letter"]) == (0, 0, 0)
    assert (c["changed"], c["retry"], c["dead"]) == (1, 1, 1)


def test_replay_round_trip_keeps_history(store):
    store.watchlist.upsert_watchlist(["bad"], "listing", D1)
    store.job_sets.build_job_set(D1, 100)
    store.ledger.claim_batch(D1, 0, "run-1", "t1", 60, T0)
    dead = [
        SubJobResult(
            "bad",
            Outcome.DEAD,
            "permanent: HTTP 403",
            error_class="permanent",
            http_status=403,
            attempts=1,
            error=_error(403),
        )
    ]
    store.ledger.record_batch(_record(["bad"], "run-1", "t1", results=dead))
    (entry,) = store.queues.dead_letters(DeadLetterFilter(error_classes=["permanent"]))
    assert store.queues.dead_letters(DeadLetterFilter(error_classes=["poison"])) == []
    assert store.queues.request_replay([entry], D2, T0) == 1
    assert store.queues.dead_letters(DeadLetterFilter(ids=[entry["id"]])) == []  # no longer open
    assert store.queues.schedule_retries(D2)["replay"] == 1
    assert store.job_sets.build_job_set(D2, 100)["replay"] == 1
    (member,) = store.ledger.batch_members(D2, 0)
    assert member.dead_letter_id == entry["id"] and member.origin == "replay"
    # the replay fails again: a new entry for D2 carries both attempts; the old one points at it
    store.ledger.claim_batch(D2, 0, "run-2", "t2", 60, T0 + timedelta(days=1))
    again = [
        SubJobResult(
            "bad",
            Outcome.DEAD,
            "permanent: HTTP 403",
            error_class="permanent",
            http_status=403,
            attempts=1,
            error=_error(403),
        )
    ]
    store.ledger.record_batch(_record(["bad"], "run-2", "t2", results=again, day=D2, members={"bad": member}))
    rows = {e["id"]: e for e in store.queues.dead_letters()}
    assert rows["2026-01-01/bad"]["status"] == "failed_again"
    assert rows["2026-01-01/bad"]["resolved_by"] == "2026-01-02/bad"
    assert [h["partition"] for h in rows["2026-01-02/bad"]["history"]] == ["2026-01-01", "2026-01-02"]
    # replayed once more, it succeeds: resolved, and back on the watchlist
    store.queues.request_replay([rows["2026-01-02/bad"]], D3, T0)
    store.queues.schedule_retries(D3)
    store.job_sets.build_job_set(D3, 100)
    (member,) = store.ledger.batch_members(D3, 0)
    store.ledger.claim_batch(D3, 0, "run-3", "t3", 60, T0 + timedelta(days=2))
    ok = [SubJobResult("bad", Outcome.CHANGED, "new")]
    store.ledger.record_batch(_record(["bad"], "run-3", "t3", results=ok, day=D3, members={"bad": member}))
    assert {e["id"]: e["status"] for e in store.queues.dead_letters()}["2026-01-02/bad"] == "resolved"
    assert store.watchlist.watchlist_counts()["active"] == 1


def test_scheduling_keeps_one_entry_per_resource(store):
    now = T0
    rows = [
        {
            "resource_id": "r",
            "due_on": d,
            "origin": "retry",
            "status": "pending",
            "tier2_days_used": n,
            "reason": "x",
            "history": [],
            "created_at": now,
        }
        for n, d in ((1, D1), (2, D2))
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.insert(retry_queue), rows)
    counts = store.queues.schedule_retries(D3)
    assert (counts["retry"], counts["superseded"]) == (1, 1)
    assert store.queues.schedule_retries(D3)["retry"] == 1  # idempotent
    with store.engine.connect() as conn:
        assert dict(conn.execute(sa.select(retry_queue.c.due_on, retry_queue.c.status)).all()) == {
            D1: "superseded",
            D2: "scheduled",
        }


def _error(status: int) -> SourceError:
    return SourceError(
        ErrorClass.POISON if status == 200 else ErrorClass.PERMANENT,
        "boom",
        url="http://api/items/x",
        status=status,
        request_headers={"Authorization": "[redacted]"},
        headers={"Content-Type": "application/json"},
        body_excerpt="{bro",
    )


def _record(ids, run_id, token, results=None, day=D1, members=None) -> BatchRecord:
    results = results or [SubJobResult(rid, Outcome.CHANGED, "new") for rid in ids]
    updates = [
        ResourceUpdate(r.resource_id, "live", "fp", None, {}, {"id": r.resource_id}, True)
        for r in results
        if r.outcome is Outcome.CHANGED
    ]
    members = members or {rid: Member(rid) for rid in ids}
    return BatchRecord(
        partition=day,
        batch_no=0,
        result=BatchResult(results, updates),
        members=members,
        meter=CallMeter(),
        started_at=T0,
        finished_at=T0,
        run_id=run_id,
        claim_token=token,
    )
