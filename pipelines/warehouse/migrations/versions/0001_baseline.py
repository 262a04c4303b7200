"""The baseline: the warehouse as the last release before versioned migrations made it.

A warehouse that release (or an older one) created has these tables without a recorded
revision; so this revision creates only what is missing, then makes the changes the releases
before it made at start-up (columns added since a table was first created, the ETag widened to
TEXT), so a warehouse of any earlier release arrives at the same schema. Frozen: later changes
are later revisions, never edits here.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Columns added after their table was first created (a constant default: no row is rewritten).
ADDED_COLUMNS = {
    "batch_ledger": ["probe_calls", "bulk_probe_calls", "detail_calls", "embedded_details"],
    "spent_calls": ["cost"],
    "listed_states": ["projected", "detail"],
}


def upgrade() -> None:
    _table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("partition", sa.String(length=20), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("delivery_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _table(
        "batch_ledger",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=False),
        sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sub_jobs", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("gone", sa.Integer(), nullable=False),
        sa.Column("retry", sa.Integer(), nullable=False),
        sa.Column("dead", sa.Integer(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("calls_saved", sa.BigInteger(), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("throttled", sa.BigInteger(), nullable=False),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        sa.Column("probe_calls", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bulk_probe_calls", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("detail_calls", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("embedded_details", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("partition", "batch_no"),
    )
    _table(
        "dead_letter",
        sa.Column("id", sa.String(length=250), nullable=False),
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("error_class", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column(
            "request_headers",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column(
            "response_headers",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("body_excerpt", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "history",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("replay_due_on", sa.Date(), nullable=True),
        sa.Column("resolved_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("ix_dead_letter_partition", "dead_letter", ["partition", "error_class"], unique=False)
    _index("ix_dead_letter_resource", "dead_letter", ["resource_id"], unique=False)
    _table(
        "job_set",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("partition", "resource_id"),
    )
    _index("ix_job_set_batch", "job_set", ["partition", "batch_no"], unique=False)
    _table(
        "listed_states",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "projected",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "detail",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("partition", "resource_id"),
    )
    _table(
        "listing_accounts",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("pages", sa.BigInteger(), nullable=False),
        sa.Column("served", sa.BigInteger(), nullable=False),
        sa.Column("distinct_ids", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("stated_total", sa.BigInteger(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column(
            "refused_sample",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition"),
    )
    _table(
        "listing_handoffs",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=True),
        sa.Column("handed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("partition"),
    )
    _table(
        "listings",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("since", sa.Text(), nullable=True),
        sa.Column("watermark", sa.Float(), nullable=True),
        sa.Column("served", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("partition"),
    )
    _table(
        "resources",
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column(
            "projected",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "details",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_changed", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_partition", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("resource_id"),
    )
    _table(
        "retry_queue",
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("scheduled_for", sa.Date(), nullable=True),
        sa.Column("tier2_days_used", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column(
            "history",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("dead_letter_id", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "due_on"),
    )
    _index("ix_retry_queue_due", "retry_queue", ["status", "due_on"], unique=False)
    _index("ix_retry_queue_scheduled", "retry_queue", ["scheduled_for", "resource_id"], unique=False)
    _table(
        "run_halts",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.Date(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    _table(
        "spend_ceilings",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition"),
    )
    _table(
        "spent_calls",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), server_default="0", nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition", "token"),
    )
    _table(
        "step_outputs",
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column(
            "value",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    _index("ix_step_outputs_stored_at", "step_outputs", ["stored_at"], unique=False)
    _table(
        "sub_job_outcomes",
        sa.Column("partition", sa.Date(), nullable=False),
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("error_class", sa.String(length=20), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition", "resource_id"),
    )
    _index("ix_outcomes_resource", "sub_job_outcomes", ["resource_id", "partition"], unique=False)
    _table(
        "warehouse_meta",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    _table(
        "watchlist",
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("added_on", sa.Date(), nullable=False),
        sa.Column("last_listed_on", sa.Date(), nullable=False),
        sa.Column("deactivated_on", sa.Date(), nullable=True),
        sa.Column("deactivated_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("resource_id"),
    )
    _add_columns()
    _widen_etag()


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore the warehouse's backup instead")


_created: dict[str, list[sa.Column]] = {}


def _table(name: str, *elements) -> None:
    """Create the table unless an earlier release did; remember its columns either way."""
    _created[name] = [e for e in elements if isinstance(e, sa.Column)]
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *elements)


def _index(name: str, table: str, columns: list[str], unique: bool = False) -> None:
    if name not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns, unique=unique)


def _add_columns() -> None:
    for table, names in ADDED_COLUMNS.items():
        present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
        for column in _created[table]:
            if column.name in names and column.name not in present:
                default = column.server_default.arg if column.server_default is not None else None  # type: ignore[attr-defined]
                added = sa.Column(column.name, column.type, server_default=default, nullable=column.nullable)
                with op.batch_alter_table(table) as batch:
                    batch.add_column(added)


def _widen_etag() -> None:
    """resources.etag was VARCHAR(200) once; an ETag is sent back verbatim, so never cut."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite never enforced the length
    found = {c["name"]: c["type"] for c in sa.inspect(bind).get_columns("resources")}
    if isinstance(found.get("etag"), sa.String) and getattr(found["etag"], "length", None):
        op.alter_column("resources", "etag", type_=sa.Text())
