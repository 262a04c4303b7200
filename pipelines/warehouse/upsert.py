"""``INSERT ... ON CONFLICT DO UPDATE`` for SQLite and PostgreSQL, one statement for many rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
):
    """A multi-row insert that updates on primary-key conflict.

    ``set_(excluded, table)`` gives the columns to update (default: every non-key column from
    the new row); ``where(excluded, table)`` guards the update (e.g. never let an older write win).
    """
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(list(rows))
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(list(rows))
    else:
        raise ValueError(f"warehouse dialect {dialect!r} is not supported (use sqlite or postgresql)")
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
