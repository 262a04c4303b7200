"""``column IN (values)`` for a batch's ids, cheap to build and to send.

SQLAlchemy's ``column.in_(ids)`` checks every value when the statement is built and renders one
bound parameter per value when it runs; a statement built anew for every batch is coerced, keyed
and looked up in the compiled cache every time. So the statements a batch runs are built once
per dialect, with the ids bound by name: on PostgreSQL as one array parameter
(``column = ANY(%(ids)s)``, which psycopg2 adapts in C), on SQLite as an expanding ``IN``:
about a fifth of the engine's and the warehouse thread's work less (docs/benchmark.md, "Why the
code is as it is").
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def one_of(dialect: str, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    """``column`` is one of the list bound as ``name``."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(sa.bindparam(name, expanding=True))
