from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipelines.sync.resources import _store
from pipelines.warehouse.schema import metadata
from pipelines_tests.helpers import SampleServer, postgres_database


@pytest.fixture(scope="session")
def pg_database():
    """One PostgreSQL database for the test session (its tables are dropped after each test)."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def pg_warehouse_url(pg_database):
    yield pg_database
    _store.cache_clear()
    engine = sa.create_engine(pg_database)
    metadata.drop_all(engine)
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
