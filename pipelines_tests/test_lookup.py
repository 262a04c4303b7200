"""``python -m pipelines.lookup``: one resource's story across the tiers, in one call."""

import json
import subprocess
import sys
from datetime import UTC, date, datetime

from pipelines.core.errors import ErrorClass, SourceError
from pipelines.core.outcomes import BatchResult, Member, Outcome, SubJobResult
from pipelines.source.client import CallMeter
from pipelines.warehouse.store import BatchRecord, Warehouse, create_warehouse_engine
from pipelines_tests.helpers import ROOT

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)
T = datetime(2026, 1, 1, tzinfo=UTC)


def _write(store, day, results, members, token):
    assert store.ledger.claim_batch(day, 0, f"run-{day}", token, 60, T)
    store.ledger.record_batch(
        BatchRecord(
            partition=day,
            batch_no=0,
            result=BatchResult(results),
            members=members,
            meter=CallMeter(),
            started_at=T,
            finished_at=T,
            run_id=f"run-{day}",
            claim_token=token,
        )
    )


def test_lookup_tells_the_story_across_tiers(sqlite_warehouse_url):
    store = Warehouse(create_warehouse_engine(sqlite_warehouse_url))
    err = SourceError(ErrorClass.TRANSIENT, "HTTP 503", url="http://api/items/x", status=503)
    _write(
        store,
        D1,
        [
            SubJobResult(
                "x",
                Outcome.RETRY,
                "tier 2 day 1 of 3: HTTP 503",
                error_class="transient",
                http_status=503,
                attempts=4,
                error=err,
                tier2_days_used=1,
            )
        ],
        {"x": Member("x")},
        "t1",
    )
    bad = SourceError(ErrorClass.PERMANENT, "HTTP 403", url="http://api/items/x", status=403)
    _write(
        store,
        D2,
        [
            SubJobResult(
                "x",
                Outcome.DEAD,
                "permanent: not retried: HTTP 403",
                error_class="permanent",
                http_status=403,
                attempts=1,
                error=bad,
            )
        ],
        {"x": Member("x", "retry", 1, ({"partition": "2026-01-01"},))},
        "t2",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.lookup", "x", "--warehouse", sqlite_warehouse_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    story = json.loads(proc.stdout)
    assert [(o["partition"], o["outcome"]) for o in story["outcomes"]] == [
        ("2026-01-01", "retry"),
        ("2026-01-02", "dead"),
    ]
    assert story["retry_queue"][0]["due_on"] == "2026-01-02"
    assert story["dead_letter"][0]["id"] == "2026-01-02/x"
    assert len(story["dead_letter"][0]["history"]) == 2
    one_day = json.loads(
        subprocess.run(
            [sys.executable, "-m", "pipelines.lookup", "x", "--day", "2026-01-02", "--warehouse", sqlite_warehouse_url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    assert [o["outcome"] for o in one_day["outcomes"]] == ["dead"]


def test_lookup_never_creates_a_warehouse_and_names_the_mistake(tmp_path):
    typo = tmp_path / "warehuose.db"
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.lookup", "x", "--warehouse", f"sqlite:///{typo}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--warehouse" in proc.stderr and "does not exist" in proc.stderr
    assert not typo.exists()  # before, a typo made a new, empty warehouse
    bad_day = subprocess.run(
        [sys.executable, "-m", "pipelines.lookup", "x", "--day", "2026-13-01", "--warehouse", f"sqlite:///{typo}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_day.returncode == 2 and "--day" in bad_day.stderr
