"""Scratch PostgreSQL databases on the machine's server, for the benchmark and the tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextmanager
def postgres_database(prefix: str = "pipelines_test") -> Iterator[str]:
    """A fresh database (its SQLAlchemy URL), dropped afterwards; fails loudly if PostgreSQL is absent."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is required here and is not reachable at {POSTGRES_URL}: {exc}. "
            "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            "or set TEST_POSTGRES_URL."
        ) from exc
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def dagster_home_on_postgres(path, postgres_url: str):
    """A DAGSTER_HOME whose instance stores runs and events in PostgreSQL (dagster-postgres)."""
    path.mkdir(parents=True, exist_ok=True)
    plain = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    (path / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {plain}\ntelemetry:\n  enabled: false\n"
    )
    # Its tables, created now: processes that start at once on a new instance race in CREATE
    # TABLE (dagster-postgres takes no lock), and all but one fail.
    from dagster import DagsterInstance  # noqa: PLC0415 - the benchmark's instance only

    DagsterInstance.from_config(str(path)).dispose()
    return path
