"""The warehouse tables at the newest revision, portable between SQLite and PostgreSQL. An empty
namespace is created from them; a change here is also a new revision under
``migrations/versions/`` (a test holds the two equal)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipelines.core.ids import MAX_ID_LENGTH

metadata = sa.MetaData()

# JSON as SQL NULL when None (so COALESCE keeps stored values); JSONB on PostgreSQL.
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
Id = sa.String(MAX_ID_LENGTH)  # core.ids refuses longer ids before they get here

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
    sa.Column("origin", sa.String(20), nullable=False),  # watchlist / retry / replay
    sa.Index("ix_job_set_batch", "partition", "batch_no"),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("resource_id", Id, primary_key=True),
    sa.Column("status", sa.String(10), nullable=False),  # live / gone
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("etag", sa.Text),  # sent back verbatim in If-None-Match: never cut
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
    sa.Column("outcome", sa.String(20), nullable=False),  # changed / unchanged / gone / retry / dead
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("error_class", sa.String(20)),
    sa.Column("http_status", sa.Integer),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_outcomes_resource", "resource_id", "partition"),
)

LEDGER_COUNTS = ("sub_jobs", "changed", "new", "unchanged", "gone", "retry", "dead")
LEDGER_CALLS = ("calls", "calls_saved", "bytes_received", "throttled", "retries")
# The batch's calls by kind, priced by the source's declaration (``cost``): added to a ledger
# made before them by migration 0001 (0 for the batches it already held).
LEDGER_KIND_CALLS = ("probe_calls", "bulk_probe_calls", "detail_calls")
# Details the batch took from the answer that carried them, with no detail call (detail.embedded).
LEDGER_EMBEDDED = "embedded_details"

batch_ledger = sa.Table(
    "batch_ledger",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("batch_no", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # running (claimed) / completed
    sa.Column("claim_token", sa.String(64), nullable=False),
    sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=False),
    *(sa.Column(name, sa.Integer, nullable=False, default=0) for name in LEDGER_COUNTS),
    *(sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in LEDGER_CALLS),
    *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in LEDGER_KIND_CALLS),
    sa.Column(LEDGER_EMBEDDED, sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
)

retry_queue = sa.Table(
    "retry_queue",
    metadata,
    sa.Column("resource_id", Id, primary_key=True),
    sa.Column("due_on", sa.Date, primary_key=True),
    sa.Column("origin", sa.String(20), nullable=False),  # retry / replay
    sa.Column("status", sa.String(20), nullable=False),  # pending / scheduled / done / superseded
    sa.Column("scheduled_for", sa.Date),
    sa.Column("tier2_days_used", sa.Integer, nullable=False),
    sa.Column("error_class", sa.String(20)),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("history", Json, nullable=False),  # every failed attempt so far, oldest first
    sa.Column("dead_letter_id", sa.String(250)),  # set for replays
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_retry_queue_due", "status", "due_on"),
    sa.Index("ix_retry_queue_scheduled", "scheduled_for", "resource_id"),
)

dead_letter = sa.Table(
    "dead_letter",
    metadata,
    sa.Column("id", sa.String(250), primary_key=True),  # <partition>/<resource_id>
    sa.Column("partition", sa.Date, nullable=False),
    sa.Column("resource_id", Id, nullable=False),
    sa.Column("batch_id", sa.String(40), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("error_class", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("method", sa.String(10)),
    sa.Column("url", sa.Text),  # never holds a secret: the token travels in a header
    sa.Column("request_headers", Json),  # secrets masked
    sa.Column("response_status", sa.Integer),
    sa.Column("response_headers", Json),  # secrets masked
    sa.Column("body_excerpt", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("history", Json, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # dead / replay_requested / resolved / failed_again
    sa.Column("replay_due_on", sa.Date),
    sa.Column("resolved_by", sa.String(250)),  # the partition that resolved it, or the new entry's id
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_dead_letter_partition", "partition", "error_class"),
    sa.Index("ix_dead_letter_resource", "resource_id"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # short / behind_pace / no_job_set / recovered / run_failed
    sa.Column("partition", sa.String(20)),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("delivered", sa.Boolean, nullable=False),  # false: no webhook configured, or it failed
    sa.Column("delivery_error", sa.String(500)),
)

# Every call is paid for: what each client (a sync step, a listing) spent, written down before
# it is sent (pipelines/source/spend.py), so the calls of a run that died still count.
spent_calls = sa.Table(
    "spent_calls",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("token", sa.String(64), primary_key=True),  # one client
    sa.Column("kind", sa.String(10), nullable=False),  # sync / listing
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("calls", sa.BigInteger, nullable=False),  # granted so far, or the exact count once final
    sa.Column("cost", sa.Float, nullable=False, server_default="0"),  # at the declared prices, likewise
    sa.Column("final", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# A day whose spending ceiling held calls back (core/ceiling.py): what the ceiling was, and when
# it was first reached. The day's remaining sub-jobs went to the retry queue unsent.
spend_ceilings = sa.Table(
    "spend_ceilings",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("calls", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.Float),
    sa.Column("run_id", sa.String(64), nullable=False),  # the run that first reached it
    sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
)

# The listing as the probe (probe strategies listing / changed_since): each day's listing, the
# watermark it moved to (the latest change marker the API served, epoch seconds), and the
# fingerprint every item it served carries.
listings = sa.Table(
    "listings",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("mode", sa.String(10), nullable=False),  # full / changed
    sa.Column("since", sa.Text),  # the change filter's value (changed mode)
    sa.Column("watermark", sa.Float),  # set when the listing finished
    sa.Column("served", sa.BigInteger, nullable=False, default=0),  # items it served
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

listed_states = sa.Table(
    "listed_states",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("resource_id", Id, primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("projected", Json),  # the fields the listing served (its detail, if it carried one, apart)
    sa.Column("detail", Json),  # the detail it carried, kept only for an id new or changed that day
)

# Every day's last listing walk, and whether it accounted for every item it should have served
# (source/listing_account.py): an incomplete one deactivates nothing and fails the watchlist's check.
listing_accounts = sa.Table(
    "listing_accounts",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("pages", sa.BigInteger, nullable=False),
    sa.Column("served", sa.BigInteger, nullable=False),  # items, duplicates and refused ones included
    sa.Column("distinct_ids", sa.BigInteger, nullable=False),
    sa.Column("duplicates", sa.BigInteger, nullable=False),
    sa.Column("refused", sa.BigInteger, nullable=False),
    sa.Column("stated_total", sa.BigInteger),  # what the API said the listing holds, if it said
    sa.Column("problem", sa.Text, nullable=False),  # why it is incomplete ('' when complete)
    sa.Column("refused_sample", Json, nullable=False),  # [[shown, problem], ...]
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
)

# A day whose watchlist listing was handed to the sync (it runs beside the batches of the ids
# already tracked, in the step that holds the handoff): pending until that listing is whole.
listing_handoffs = sa.Table(
    "listing_handoffs",
    metadata,
    sa.Column("partition", sa.Date, primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),  # the run whose watchlist step handed it over
    sa.Column("batch_size", sa.Integer),  # the day's batch size, set by its job set
    sa.Column("handed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

# A run stopped because the API failed as a whole (a refused credential, a systemic failure):
# the run's other steps read it here and stop before calling, on whatever worker they run.
run_halts = sa.Table(
    "run_halts",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("partition", sa.Date),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# What the warehouse is: which source's data it holds ("source": "sample" or the API's URL), so
# that the embedded sample API never mixes demo data into a real source's warehouse.
warehouse_meta = sa.Table(
    "warehouse_meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Values handed from one step to the next (the warehouse IO manager): steps on any worker read
# them here, so no shared disk is needed. Small JSON documents (a step's batch numbers, figures).
step_outputs = sa.Table(
    "step_outputs",
    metadata,
    sa.Column("key", sa.String(500), primary_key=True),  # asset key + partition, or run/step/output
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("value", Json, nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_step_outputs_stored_at", "stored_at"),
)
