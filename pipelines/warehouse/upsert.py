"""``INSERT ... ON CONFLICT DO UPDATE`` for SQLite and PostgreSQL, one statement for many rows.

On PostgreSQL the rows travel as ONE bound JSON document that ``jsonb_to_recordset`` unpacks
server-side, so the statement has one parameter whatever the batch size. ``bulk_upsert`` compiles
it once per table, columns and conflict policy and then only encodes the rows (orjson, in C): a
100-row multi-``VALUES`` statement has 1,000 parameters, built and compiled anew for every batch.
On SQLite the one-row statement, built once, is executed for all the rows at once (the driver's
``executemany``, in C and in process). What each cost: docs/benchmark.md, "Why the code is as it
is", and ``make bench``'s warehouse section.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

SetClause = Callable[[Any, sa.Table], Mapping[str, Any]]


def upsert(
    dialect: str,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    set_: SetClause | None = None,
    where: Callable[[Any, sa.Table], Any] | None = None,
    common: Mapping[str, Any] | None = None,
):
    """A multi-row insert that updates on primary-key conflict.

    ``set_(excluded, table)`` gives the columns to update (default: every non-key column from
    the new row); ``where(excluded, table)`` guards the update (e.g. never let an older write win).
    ``common`` holds scalar values every row shares (a batch's timestamps), bound once.
    """
    common = dict(common or {})
    stmt: Any
    if dialect == "postgresql":
        names = list(rows[0])
        stmt = postgresql.insert(table).from_select([*names, *common], _recordset(table, names, rows, common))
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values([{**row, **common} for row in rows])
    else:
        raise ValueError(f"warehouse dialect {dialect!r} is not supported (use sqlite or postgresql)")
    return _on_conflict(stmt, table, set_, where)


def _on_conflict(stmt, table: sa.Table, set_: SetClause | None, where: Callable[[Any, sa.Table], Any] | None):
    keys = [c.name for c in table.primary_key.columns]
    values = (
        set_(stmt.excluded, table)
        if set_
        else {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    )
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_=dict(values),
        where=where(stmt.excluded, table) if where else None,
    )


def bulk_upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    set_: SetClause | None = None,
    where: Callable[[Any, sa.Table], Any] | None = None,
    common: Mapping[str, Any] | None = None,
) -> int:
    """Execute the upsert of ``rows`` (all with the same keys), ``common`` scalars bound once;
    the rows inserted or updated (an update ``where`` refuses is neither). ``set_`` and
    ``where`` must be module-level functions: the compiled statement is cached under them."""
    if not rows:
        return 0
    common = dict(common or {})
    if conn.dialect.name == "sqlite":
        stmt = _sqlite_statement(table, set_, where)
        return conn.execute(stmt, [{**row, **common} for row in rows]).rowcount
    if conn.dialect.name != "postgresql":
        raise ValueError(f"warehouse dialect {conn.dialect.name!r} is not supported (use sqlite or postgresql)")
    sql = _compiled_postgresql(table, tuple(rows[0]), tuple(common), set_, where)
    return conn.exec_driver_sql(sql, {"rows": json_document(rows), **common}).rowcount


# A JSON ``\u0000`` escape not itself escaped (preceded by an even number of backslashes).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def json_document(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as one JSON document PostgreSQL accepts. JSONB and TEXT cannot hold a NUL
    character, which an API may well send (in a record, a body excerpt, an id's message): it is
    stored as U+FFFD, the replacement character, instead of failing the batch on every attempt."""
    document = orjson.dumps(rows)  # datetimes as RFC 3339, in C
    if b"\\u0000" in document:
        document = _NUL_ESCAPE.sub(rb"\1\\ufffd", document)
    return document.decode()


@lru_cache(maxsize=64)
def _sqlite_statement(table: sa.Table, set_, where):
    """The upsert with no values of its own: ``executemany`` binds each row's, by column type."""
    return _on_conflict(sqlite.insert(table), table, set_, where)


@lru_cache(maxsize=64)
def _compiled_postgresql(table: sa.Table, names: tuple[str, ...], common: tuple[str, ...], set_, where) -> str:
    from sqlalchemy.dialects.postgresql import psycopg2

    stmt = upsert("postgresql", table, [dict.fromkeys(names)], set_=set_, where=where, common=dict.fromkeys(common))
    compiled = stmt.compile(dialect=psycopg2.dialect())
    if set(compiled.params) != {"rows", *common}:  # a policy that binds values of its own cannot be cached
        extra = sorted(set(compiled.params) - {"rows", *common})
        raise ValueError(f"bulk_upsert of {table.name}: set_/where bind {extra}")
    return str(compiled)


def resources_set(excluded, table: sa.Table) -> dict[str, Any]:
    """Keep what the new row does not bring (details when unchanged, fingerprint on a 304)."""
    keep = ("fingerprint", "etag", "projected", "details", "last_changed")
    values = {name: sa.func.coalesce(excluded[name], table.c[name]) for name in keep}
    values.update(
        status=excluded.status,
        last_checked=excluded.last_checked,
        last_partition=excluded.last_partition,
    )
    return values


def newer_or_same(excluded, table: sa.Table):
    """An older observation never overwrites a newer one."""
    return table.c.last_checked <= excluded.last_checked


def _recordset(
    table: sa.Table, names: list[str], rows: Sequence[Mapping[str, Any]], common: Mapping[str, Any]
) -> sa.Select:
    """``SELECT r.a, ..., :common ... FROM jsonb_to_recordset(:rows) AS r(a type, ...)``: JSON null
    and absent keys are SQL NULL, so ``COALESCE(excluded.x, ...)`` keeps stored values as on SQLite."""
    document = json_document(list(rows))
    source = (
        sa.func.jsonb_to_recordset(sa.cast(sa.bindparam("rows", document, type_=sa.Text), postgresql.JSONB))
        .table_valued(*(sa.column(name, table.c[name].type) for name in names))
        .render_derived(name="r", with_types=True)
    )
    shared = (sa.cast(sa.bindparam(name, value), table.c[name].type).label(name) for name, value in common.items())
    return sa.select(*(source.c[name] for name in names), *shared)
