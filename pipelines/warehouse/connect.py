"""Connecting to the warehouse: its engine, and opening one that must already exist (read-only
tools). Its tables are made and versioned by ``migrate.py``.

A warehouse holds one namespace per source, so rows of two sources never meet: on PostgreSQL a
schema named for the source (the connection's ``search_path``, so every statement, DDL and raw
SQL alike, resolves there), on SQLite a file beside the URL's (``warehouse.db`` ->
``warehouse.shop.db``). No namespace (``None``) is the URL's own schema or file: where a
deployment configured by environment variables keeps its tables.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from pipelines.core.ids import name_problem
from pipelines.core.redact import known_secrets, scrub


class WarehouseNotFoundError(RuntimeError):
    """A read-only tool was pointed at a warehouse that does not exist (it never creates one)."""


def namespaced_url(url: str, namespace: str | None) -> str:
    """The URL of ``namespace``'s SQLite file (the same URL on PostgreSQL, or without one)."""
    if namespace is None or not url.startswith("sqlite"):
        return url
    made = sa.engine.make_url(url)
    if not made.database or made.database == ":memory:":
        raise ValueError(f"an in-memory SQLite warehouse has no room for the namespace {namespace!r}")
    path = Path(made.database)
    return made.set(database=str(path.with_name(f"{path.stem}.{namespace}{path.suffix or '.db'}"))).render_as_string(
        hide_password=False
    )


def check_namespace(namespace: str | None) -> None:
    if namespace is not None and (problem := name_problem(namespace)) is not None:
        raise ValueError(f"warehouse namespace: {problem}")


def default_schema(url: str) -> str | None:
    """The schema a PostgreSQL connection of ``url`` writes to without a namespace: the first of
    its search_path (``"$user", public`` by default: a schema named like the user, when one
    exists). A source named like it would share the tables of the source configured by
    environment."""
    made = sa.engine.make_url(url)
    if not made.drivername.startswith("postgresql"):
        return None
    options = str(made.query.get("options", ""))
    if "search_path=" in options:
        return options.split("search_path=", 1)[1].split()[0].split(",")[0].strip('"') or None
    return made.username or None


def _pg_options(namespace: str | None) -> str:
    # A session stuck inside a transaction (a writer cut off mid-batch) would hold its batch's
    # ledger row lock; PostgreSQL ends such sessions after a minute, rolling the batch back.
    # lz4 compresses the kilobytes of each resource's details several times faster than the
    # default pglz (more upserted rows per second: docs/benchmark.md, "Why the code is as it is").
    options = "-c idle_in_transaction_session_timeout=60000 -c default_toast_compression=lz4"
    return options + (f" -c search_path={namespace}" if namespace else "")


def create_warehouse_engine(url: str, namespace: str | None = None) -> sa.Engine:
    check_namespace(namespace)
    url = namespaced_url(url, namespace)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # WAL: readers never block the writer
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return scrubbed(engine)
    if namespace:
        _create_schema(url, namespace)
    return scrubbed(sa.create_engine(url, pool_pre_ping=True, connect_args={"options": _pg_options(namespace)}))


def scrubbed(engine: sa.Engine) -> sa.Engine:
    """Every statement's parameters pass the process's one scrubber (``core/redact.py``) before
    they reach the database: no secret the process knows is stored, whichever table, column or
    code path writes it (a dead letter's reflected headers, an alert's text, a halt's message)."""

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def _scrub(conn, cursor, statement, parameters, context, executemany):
        return statement, scrub(parameters) if known_secrets() else parameters

    return engine


def _create_schema(url: str, namespace: str) -> None:
    """The source's schema, before any connection names it in its search_path (under the schema
    lock: two runs starting at once would race in CREATE SCHEMA IF NOT EXISTS)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {conn.dialect.identifier_preparer.quote(namespace)}"))
    finally:
        engine.dispose()


SCHEMA_LOCK = 0x70697065  # an advisory lock id of our own ("pipe")


def existing_engine(url: str, namespace: str | None = None) -> sa.Engine:
    """An engine on the warehouse at ``url`` (``namespace``'s part of it), which must exist and
    hold our tables: an error that names the URL (password masked) otherwise. Never creates a
    database, a file, a schema or a table."""
    check_namespace(namespace)
    url = namespaced_url(url, namespace)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True) + (
        f" (namespace {namespace})" if namespace else ""
    )
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if not path or path == ":memory:" or not Path(path).is_file():
            raise WarehouseNotFoundError(f"no warehouse at {shown}: the file does not exist")
        engine = sa.create_engine(url)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"options": _pg_options(namespace)})
    engine = scrubbed(engine)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if namespace and engine.dialect.name == "postgresql" and namespace not in inspector.get_schema_names():
                raise WarehouseNotFoundError(f"no warehouse at {shown}: the schema {namespace} does not exist")
            tables = set(inspector.get_table_names())
    except sa.exc.OperationalError as exc:
        raise WarehouseNotFoundError(f"cannot open the warehouse at {shown}: {exc.orig}") from None
    missing = {"resources", "sub_job_outcomes", "dead_letter"} - tables
    if missing:
        raise WarehouseNotFoundError(f"{shown} is not a pipelines warehouse: no {', '.join(sorted(missing))} table")
    return engine
