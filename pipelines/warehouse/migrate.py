"""The warehouse's schema version: created at the newest on an empty namespace, checked at every
start, and upgraded only by the command (``python -m pipelines.migrate_warehouse``), as Dagster's
own storage is (``dagster instance migrate``).

A namespace (a source's PostgreSQL schema or SQLite file) records its revision in
``alembic_version``. Empty, it is created whole and recorded at the newest revision. Holding our
tables at an older revision, or with none recorded (a release before versioned migrations), the
sync refuses to start, naming the command; a read-only tool the same, and it never writes. At a
revision this code does not know (a newer release wrote it), everything refuses.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from pipelines.warehouse.connect import SCHEMA_LOCK
from pipelines.warehouse.schema import metadata

COMMAND = "python -m pipelines.migrate_warehouse"
MIGRATIONS = Path(__file__).parent / "migrations"


class WarehouseVersionError(RuntimeError):
    """The warehouse is not at this code's revision; the message says which and what to run."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    """The revisions shipped with this code: read from ``versions/`` once per process (every
    start asks for the newest)."""
    return ScriptDirectory.from_config(_config())


def head() -> str:
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def current(conn: sa.Connection) -> str | None:
    """The revision recorded in the connection's namespace (None: none recorded)."""
    return MigrationContext.configure(conn).get_current_revision()


def holds_tables(conn: sa.Connection) -> bool:
    """Whether the namespace holds any table of ours (a warehouse, versioned or not)."""
    return bool(set(sa.inspect(conn).get_table_names()) & set(metadata.tables))


def where(conn: sa.Connection) -> str:
    """The namespace, as a message names it: its URL (password hidden), and its schema."""
    shown = f"the warehouse at {conn.engine.url.render_as_string(hide_password=True)}"
    if conn.dialect.name == "postgresql":
        shown += f" (schema {conn.execute(sa.select(sa.func.current_schema())).scalar_one()})"
    return shown


def problem(conn: sa.Connection) -> str | None:
    """What keeps this code from using the namespace as it is (None: at this code's revision)."""
    found, newest = current(conn), head()
    if found == newest:
        return None
    at = where(conn)
    if found is not None and found not in revisions():
        return (
            f"{at} is at warehouse revision {found}, which this code does not know (a newer release migrated "
            f"it; this one knows up to {newest}): run the release that did"
        )
    was = f"at revision {found}" if found else "from a release before versioned migrations (no revision recorded)"
    return f"{at} is {was}; this code needs revision {newest}. Back it up, then run `{COMMAND}`"


def prepare(engine: sa.Engine) -> None:
    """At the start of anything that writes: an empty namespace is created at the newest
    revision; one at this code's revision is used as it is; any other stops here, named."""
    with engine.begin() as conn:
        _lock(conn)
        if current(conn) is None and not holds_tables(conn):
            metadata.create_all(conn)
            MigrationContext.configure(conn).stamp(_scripts(), head())
            return
        if (found := problem(conn)) is not None:
            raise WarehouseVersionError(found)


def check(engine: sa.Engine) -> None:
    """For a read-only tool: the namespace is at this code's revision, or an error; no write."""
    with engine.connect() as conn:
        if (found := problem(conn)) is not None:
            raise WarehouseVersionError(found)


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Bring the namespace to the newest revision (each revision in order, in one transaction
    on PostgreSQL); answers (from, to)."""
    with engine.begin() as conn:
        _lock(conn)
        found = current(conn)
        if found is not None and found not in revisions():
            raise WarehouseVersionError(problem(conn) or found)
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return found, head()


def _lock(conn: sa.Connection) -> None:
    """PostgreSQL: one creation or migration at a time (runs that start at once on a new
    warehouse, a backfill, would race in CREATE TABLE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
