"""The warehouse tables. Created on first use; portable between SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

# JSON as SQL NULL when None (so COALESCE keeps stored values); JSONB on PostgreSQL.
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
Id = sa.String(200)

watchlist = sa.Table(
    "watchlist",
    metadata,
    sa.Column("resource_id", Id, primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("source", sa.String(20), nullable=False),  # listing / csv
    sa.Column("added_on", sa.Date, nullable=False),
    sa.Column("last_listed_on", sa.Date, nullable=False),
    sa.Column("deactivated_on", sa.Date),
    sa.Column("deactivated_reason", sa.String(200)),
)

job_set = sa.Table(
    "job_set",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("resource_id", Id, primary_key=True),
    sa.Column("batch_no", sa.Integer, nullable=False),
    sa.Column("origin", sa.String(20), nullable=False),  # watchlist (later: retry, replay)
    sa.Index("ix_job_set_batch", "partition", "batch_no"),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("resource_id", Id, primary_key=True),
    sa.Column("status", sa.String(10), nullable=False),  # live / gone
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("etag", sa.String(200)),
    sa.Column("projected", Json),
    sa.Column("details", Json),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_changed", sa.DateTime(timezone=True)),
    sa.Column("last_checked", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_partition", sa.Date, nullable=False),
)

sub_job_outcomes = sa.Table(
    "sub_job_outcomes",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("resource_id", Id, primary_key=True),
    sa.Column("batch_no", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("error_class", sa.String(20)),
    sa.Column("http_status", sa.Integer),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_outcomes_resource", "resource_id", "partition"),
)

LEDGER_COUNTS = ("sub_jobs", "changed", "new", "unchanged", "gone", "failed")
LEDGER_CALLS = ("calls", "calls_saved", "bytes_received", "throttled", "retries")

batch_ledger = sa.Table(
    "batch_ledger",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("batch_no", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # completed
    *(sa.Column(name, sa.Integer, nullable=False, default=0) for name in LEDGER_COUNTS),
    *(sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in LEDGER_CALLS),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
)
