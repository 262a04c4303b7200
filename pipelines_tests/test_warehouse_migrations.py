"""The warehouse's versioned migrations: an empty namespace is created at the newest revision;
the revisions, run in order on an empty database, make exactly the schema the code declares; a
warehouse at another revision (or of a release before them) stops the sync and the read-only
tools with the command to run, and the read-only tools never write; the command brings it to
the newest keeping every row. And the upgrade a user makes: a warehouse created and filled by the
previous release (this issue's base commit, run from its own checkout), migrated, then synced for
another day: nothing lost, nothing duplicated, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from dagster import DagsterInstance, Failure

from pipelines.definitions import build_defs
from pipelines.sample_api import SampleApiConfig, World
from pipelines.settings import Settings
from pipelines.source.declaration import declare
from pipelines.sync.resources import WarehouseResource
from pipelines.warehouse.connect import create_warehouse_engine
from pipelines.warehouse.migrate import COMMAND, WarehouseVersionError, current, head, upgrade
from pipelines.warehouse.schema import LEDGER_KIND_CALLS, batch_ledger, job_set, metadata, sub_job_outcomes
from pipelines.warehouse.store import Warehouse, utcnow
from pipelines_tests.helpers import ROOT, stored, truth

# The previous release: the last commit before issue 27, whose warehouse had no revisions.
PREVIOUS_RELEASE = "d7e325f472c3f132468db59064a999d7a62e14a0"
N, SEED, CHANGE = 300, 5, 0.2


def migrate(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.migrate_warehouse", "--warehouse", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_the_revisions_make_exactly_the_schema_the_code_declares(warehouse_url):
    """Run in order on an empty namespace, the revisions leave nothing for Alembic's comparison
    to report against ``schema.py``: a fresh warehouse created from ``schema.py`` and one
    migrated are the same."""
    engine = create_warehouse_engine(warehouse_url)
    assert upgrade(engine) == (None, head())
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert current(conn) == head()
    engine.dispose()


def test_an_empty_warehouse_is_created_at_the_newest_revision(warehouse_url):
    engine = create_warehouse_engine(warehouse_url)
    Warehouse(engine)
    with engine.connect() as conn:
        assert current(conn) == head()
        assert set(metadata.tables) <= set(sa.inspect(conn).get_table_names())
    Warehouse(engine)  # the next start finds it at its revision and changes nothing
    engine.dispose()


def legacy_ledger(url: str) -> sa.Engine:
    """A warehouse as a release before versioned migrations and before the calls by kind left
    it: no revision recorded, a ledger row without those columns."""
    engine = create_warehouse_engine(url)
    metadata.create_all(engine)
    now = utcnow()
    with engine.begin() as conn:
        for column in LEDGER_KIND_CALLS:
            conn.execute(sa.text(f"ALTER TABLE batch_ledger DROP COLUMN {column}"))
        old = [c for c in batch_ledger.c if c.name not in LEDGER_KIND_CALLS]
        row = {c.name: 0 for c in old if isinstance(c.type, sa.Integer | sa.BigInteger)}
        row.update(partition=date(2026, 1, 1), batch_no=0, status="completed", claim_token="t", run_id="r")
        row.update(lease_expires=now, started_at=now, finished_at=now, duration_s=1.0, calls=7)
        conn.execute(sa.insert(sa.table("batch_ledger", *(sa.column(c.name) for c in old))), [row])
    return engine


def test_an_old_warehouse_stops_the_sync_until_the_command_migrates_it_keeping_its_rows(warehouse_url):
    engine = legacy_ledger(warehouse_url)
    with pytest.raises(WarehouseVersionError, match=rf"before versioned migrations.*`{COMMAND}`"):
        Warehouse(engine)
    with engine.connect() as conn:  # the refusal wrote nothing
        assert current(conn) is None
        assert not {c["name"] for c in sa.inspect(conn).get_columns("batch_ledger")} & set(LEDGER_KIND_CALLS)
    done = migrate(warehouse_url)
    assert done.returncode == 0, done.stderr
    assert f"no revision -> {head()}" in done.stdout
    Warehouse(engine)  # now it starts
    with engine.connect() as conn:
        kept = conn.execute(sa.select(batch_ledger)).one()._mapping
    assert kept["calls"] == 7 and all(kept[c] == 0 for c in LEDGER_KIND_CALLS)
    again = migrate(warehouse_url)
    assert again.returncode == 0 and f"already at {head()}" in again.stdout
    engine.dispose()


def test_a_step_on_an_old_warehouse_fails_once_naming_the_command(sqlite_warehouse_url):
    """What a run's step meets: a Failure that says what to run, and that Dagster does not retry
    (the warehouse would be the same)."""
    legacy_ledger(sqlite_warehouse_url).dispose()
    with pytest.raises(Failure) as refused:
        WarehouseResource(url=sqlite_warehouse_url).store()
    assert COMMAND in str(refused.value.description) and refused.value.allow_retries is False


def test_a_revision_this_code_does_not_know_is_refused(warehouse_url):
    engine = create_warehouse_engine(warehouse_url)
    Warehouse(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(WarehouseVersionError, match="revision 9999, which this code does not know"):
        Warehouse(engine)
    refused = migrate(warehouse_url)
    assert refused.returncode == 1 and "does not know" in refused.stderr
    engine.dispose()


def test_the_read_only_lookup_never_writes(sqlite_warehouse_url, pg_warehouse_url):
    """On a warehouse at another revision the lookup says which command to run, and leaves the
    warehouse as it found it: the SQLite file's bytes, PostgreSQL's tables."""
    for url in (sqlite_warehouse_url, pg_warehouse_url):
        legacy_ledger(url).dispose()
        before = snapshot(url)
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.lookup", "r1", "--warehouse", url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert proc.returncode == 2 and COMMAND in proc.stderr, proc.stderr
        assert snapshot(url) == before


def snapshot(url: str) -> object:
    if url.startswith("sqlite"):
        path = Path(sa.engine.make_url(url).database or "")
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.parent.glob(f"{path.name}*")}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        shape = {t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()}
    engine.dispose()
    return shape


# -- the upgrade a user makes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory) -> Path:
    """The previous release's package, from this repository's history (as a user's checkout)."""
    tree = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_RELEASE, "pipelines"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


RUN_A_DAY = """
import sys
from dagster import DagsterInstance, Failure
from pipelines.definitions import defs
defs = defs if hasattr(defs, "resolve_job_def") else defs()  # built at import before this release
job = defs.resolve_job_def("daily_sync_job")
result = job.execute_in_process(partition_key=sys.argv[1], instance=DagsterInstance.ephemeral())
assert result.success
"""


def day_by(tree: Path, day: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A day synced by the code in ``tree`` (its ``pipelines`` imported first: the current directory)."""
    return subprocess.run(
        [sys.executable, "-c", RUN_A_DAY, day],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def rows(url: str, table: sa.Table, day: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.partition == date.fromisoformat(day))).all()
    engine.dispose()
    return sorted(tuple(map(str, r)) for r in found)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_warehouse_of_the_previous_release_migrates_and_syncs_on(kind, previous_release, request, tmp_path):
    url = request.getfixturevalue(f"{'sqlite' if kind == 'sqlite' else 'pg'}_warehouse_url")
    source = tmp_path / "source.yaml"
    changes = {"client.sample": {"resources": N, "seed": SEED, "change_rate": CHANGE}, "detail.required": ["id"]}
    declared = declare(None, changes)
    source.write_text(yaml.safe_dump(declared.model_dump(mode="json", exclude_defaults=True), sort_keys=False))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SOURCE_DECLARATION": str(source), "WAREHOUSE_URL": url}

    # two days by the previous release, from its own checkout
    for day in ("2026-01-01", "2026-01-02"):
        done = day_by(previous_release, day, env)
        assert done.returncode == 0, done.stderr[-3000:]
    kept = {
        (t.name, d): rows(url, t, d)
        for t in (sub_job_outcomes, job_set, batch_ledger)
        for d in ("2026-01-01", "2026-01-02")
    }
    assert all(kept.values())

    # this release refuses to sync on it until it is migrated, naming the command
    refused = day_by(ROOT, "2026-01-03", env)
    assert refused.returncode != 0 and COMMAND in refused.stderr
    assert rows(url, job_set, "2026-01-03") == []
    migrated = migrate(url)
    assert migrated.returncode == 0 and f"no revision -> {head()}" in migrated.stdout, migrated.stderr

    # a third day by this release, on the migrated warehouse
    defs = build_defs(Settings(source_declaration=str(source), warehouse_url=url))
    third = defs.resolve_job_def("daily_sync_job").execute_in_process(
        partition_key="2026-01-03", instance=DagsterInstance.ephemeral()
    )
    assert third.success

    # nothing lost: the first two days' rows as they were
    assert {key: rows(url, metadata.tables[key[0]], key[1]) for key in kept} == kept
    # nothing duplicated, nothing missing: one outcome per sub-job of the day, every batch completed
    store = Warehouse(create_warehouse_engine(url))
    outcomes, members = rows(url, sub_job_outcomes, "2026-01-03"), rows(url, job_set, "2026-01-03")
    assert len(outcomes) == len(members) == len({r[1] for r in members}) > 0
    summary = store.reports.partition_summary(date(2026, 1, 3))
    assert summary["batches_completed"] == summary["batches_expected"] > 0
    # the warehouse is the API's truth on day 3, and day 3 fetched only what changed since day 2
    world = World(SampleApiConfig(resources=N, seed=SEED, change_rate=CHANGE))
    want = truth("items", world, 3)
    assert {rid: fp for rid, (status, fp) in stored(store).items() if status == "live"} == want
    assert 0 < summary["changed"] < N // 2  # the stored fingerprints were kept: not every id re-fetched
    store.engine.dispose()
