"""Moving a single-source deployment's tables into a source's namespace, so a source configured by
environment becomes a component (``pipelines/defs/<name>/``) and keeps its history: stored
fingerprints, the retry queue, the dead letter, the ledger. No row is rewritten: on PostgreSQL
each table changes schema (``ALTER TABLE ... SET SCHEMA``, a catalogue change), on SQLite the
file is renamed to the namespace's. The IO manager's ``step_outputs`` stay where they are: they
belong to the deployment, not to a source.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from pipelines.core.ids import name_problem
from pipelines.warehouse.connect import (
    SCHEMA_LOCK,
    WarehouseNotFoundError,
    check_namespace,
    existing_engine,
    namespaced_url,
)
from pipelines.warehouse.schema import metadata, step_outputs, warehouse_meta

SOURCE_TABLES = [t.name for t in metadata.sorted_tables if t is not step_outputs]


class NamespaceTakenError(RuntimeError):
    """The namespace already holds a source's tables: moving would mix two histories."""


def move_into_namespace(url: str, namespace: str) -> list[str]:
    """Move the tables at ``url`` (no namespace) into ``namespace``; answers what moved."""
    check_namespace(namespace)
    _refuse_taken(url, namespace)
    existing_engine(url).dispose()  # a warehouse of ours is there, or WarehouseNotFoundError
    moved = _move_sqlite(url, namespace) if url.startswith("sqlite") else _move_postgres(url, namespace)
    _hand_over(url, namespace)
    return moved


def namespaces_in(url: str) -> list[str | None]:
    """The namespaces of the warehouse at ``url`` that hold a table of ours: the URL's own
    (None) first, then each source's (PostgreSQL schemas; SQLite files beside the URL's)."""
    ours = set(metadata.tables)
    if url.startswith("sqlite"):
        base = Path(sa.engine.make_url(url).database or "")
        found: list[str | None] = [None] if base.is_file() else []
        for path in sorted(base.parent.glob(f"{base.stem}.*{base.suffix or '.db'}")):
            namespace = path.name[len(base.stem) + 1 : len(path.name) - len(base.suffix or ".db")]
            if name_problem(namespace) is None:
                found.append(namespace)
        return found
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            default = conn.execute(sa.select(sa.func.current_schema())).scalar_one()
            schemas = [s for s in inspector.get_schema_names() if set(inspector.get_table_names(schema=s)) & ours]
    finally:
        engine.dispose()
    return [None] * (default in schemas) + sorted(s for s in schemas if s != default and name_problem(s) is None)


def _hand_over(url: str, namespace: str) -> None:
    """The moved tables belong to the source named ``namespace`` from now on."""
    engine = existing_engine(url, namespace)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(warehouse_meta).where(warehouse_meta.c.key == "owner").values(value=namespace))
    finally:
        engine.dispose()


def _refuse_taken(url: str, namespace: str) -> None:
    if url.startswith("sqlite"):
        target = Path(sa.engine.make_url(namespaced_url(url, namespace)).database or "")
        if target.exists():
            raise NamespaceTakenError(f"{target} exists: the namespace {namespace} already holds a warehouse")
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if namespace in inspector.get_schema_names() and inspector.get_table_names(schema=namespace):
                raise NamespaceTakenError(f"the schema {namespace} already holds tables: it is another source's")
    finally:
        engine.dispose()


def _move_sqlite(url: str, namespace: str) -> list[str]:
    source = Path(sa.engine.make_url(url).database or "")
    target = Path(sa.engine.make_url(namespaced_url(url, namespace)).database or "")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # the write-ahead log into the file first
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        moved = [t for t in sa.inspect(conn).get_table_names() if t in SOURCE_TABLES]
    engine.dispose()
    for suffix in ("-wal", "-shm"):  # what is left of the log goes with its file
        side = source.with_name(source.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    os.replace(source, target)
    return moved


def _move_postgres(url: str, namespace: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
            here = set(sa.inspect(conn).get_table_names())  # the search_path's first schema: the URL's own
            moved = [t for t in SOURCE_TABLES if t in here]
            if not moved:
                raise WarehouseNotFoundError("no source tables to move")
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quote(namespace)}"))
            for table in moved:
                conn.execute(sa.text(f"ALTER TABLE {quote(table)} SET SCHEMA {quote(namespace)}"))
            if "alembic_version" in here:  # the moved tables are at the revision the URL's schema records
                target = f"{quote(namespace)}.alembic_version"
                conn.execute(sa.text(f"CREATE TABLE {target} (LIKE alembic_version INCLUDING ALL)"))
                conn.execute(sa.text(f"INSERT INTO {target} SELECT * FROM alembic_version"))  # noqa: S608 (quoted name)
    finally:
        engine.dispose()
    return moved
