from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.sync.resources import _store
from pipelines.warehouse.schema import metadata
from pipelines_tests.helpers import SampleServer, postgres_database


@pytest.fixture(scope="session")
def pg_database():
    """One PostgreSQL database for each test process (its tables are dropped after each test)."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def pg_warehouse_url(pg_database):
    yield pg_database
    _store.cache_clear()
    engine = sa.create_engine(pg_database)
    metadata.drop_all(engine)
    with engine.begin() as conn:  # and the revision they were at: the next test's warehouse is empty
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture
def sqlite_warehouse_url(tmp_path):
    yield f"sqlite:///{tmp_path / 'warehouse.db'}"
    _store.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request):
    """The same test on both warehouses."""
    name = "sqlite_warehouse_url" if request.param == "sqlite" else "pg_warehouse_url"
    return request.getfixturevalue(name)


@pytest.fixture
def sample_server():
    """Start sample API servers on loopback ports: ``sample_server(resources=500, ...)``."""
    servers: list[SampleServer] = []

    def start(**knobs: object) -> SampleServer:
        server = SampleServer(**knobs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# Tiers. ``make test-fast`` runs what needs no PostgreSQL, Redis, browser, subprocess server or
# Dagster instance on disk: pure logic and the in-process (ASGI) sample API, for the edit-run
# loop. Everything else is marked ``integration``, here, from what a test uses.
SERVICE_FIXTURES = frozenset({"pg_database", "pg_warehouse_url", "sample_server"})
INTEGRATION_MODULES = frozenset(
    {
        "test_bench",
        "test_celery",
        "test_crash_and_concurrency",
        "test_dagster_dev",
        "test_demo",
        "test_docker",
        "test_instance_config",
        "test_json_server",
        "test_secrets",
        "test_shared_rate",
        "test_ui",
        "test_warehouse_migrations",  # the previous release's days and the commands, as processes
    }
)


# With pytest-xdist (make test: -n 3), these modules run on one worker, one after another: each
# starts processes that want a core (Celery nodes, dagster dev, a browser, the benchmark's days)
# and asserts on rates or timings a second copy of itself would disturb. Every other test is a
# unit of its own. (A scheduler of ours: xdist 3.8's xdist_group marks are not applied under
# pytest 9, measured here.)
# test_bench is not among them: it asserts counts only (server and client agree), never a rate,
# and alone it is a third of the group's time: beside the group, the suite takes the longer of
# the two instead of their sum.
HEAVY_MODULES = frozenset({"test_celery", "test_crash_and_concurrency", "test_dagster_dev", "test_docker", "test_ui"})


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class HeavyTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = Path(nodeid.split("::", 1)[0]).stem
            return "heavy" if module in HEAVY_MODULES else nodeid

    return HeavyTogether(config, log)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        fixtures = set(getattr(item, "fixturenames", ()))
        on_postgres = "warehouse_url" in fixtures and "postgresql" in item.name
        if module in INTEGRATION_MODULES or fixtures & SERVICE_FIXTURES or on_postgres:
            item.add_marker(pytest.mark.integration)
