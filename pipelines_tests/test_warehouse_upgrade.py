"""A warehouse made before a column was added gets it when the code location next opens it, with
every row it already held kept (no rewrite), on SQLite and PostgreSQL."""

from datetime import date

import sqlalchemy as sa

from pipelines.warehouse.connect import create_tables, create_warehouse_engine
from pipelines.warehouse.schema import LEDGER_KIND_CALLS, batch_ledger
from pipelines.warehouse.store import utcnow


def test_a_ledger_without_the_calls_by_kind_gains_them(warehouse_url):
    engine = create_warehouse_engine(warehouse_url)
    create_tables(engine)
    now = utcnow()
    with engine.begin() as conn:
        for column in LEDGER_KIND_CALLS:  # as the ledger was before these columns existed
            conn.execute(sa.text(f"ALTER TABLE batch_ledger DROP COLUMN {column}"))
        old = [c for c in batch_ledger.c if c.name not in LEDGER_KIND_CALLS]
        row = {c.name: 0 for c in old if isinstance(c.type, sa.Integer | sa.BigInteger)}
        row.update(partition=date(2026, 1, 1), batch_no=0, status="completed", claim_token="t", run_id="r")
        row.update(lease_expires=now, started_at=now, finished_at=now, duration_s=1.0, calls=7)
        conn.execute(sa.insert(sa.table("batch_ledger", *(sa.column(c.name) for c in old))), [row])
    create_tables(engine)
    with engine.connect() as conn:
        kept = conn.execute(sa.select(batch_ledger)).one()._mapping
    assert kept["calls"] == 7 and all(kept[c] == 0 for c in LEDGER_KIND_CALLS)
    engine.dispose()
