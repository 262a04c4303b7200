"""Run halts and the warehouse's identity: the guards against mixing and against carrying on."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from pipelines.warehouse.schema import run_halts, warehouse_meta
from pipelines.warehouse.upsert import upsert


class SourceMismatchError(RuntimeError):
    """The warehouse holds another source's data."""


class HaltOps:
    engine: sa.Engine
    dialect: str

    def halt_run(self, run_id: str, day: date | None, kind: str, message: str) -> None:
        """The API failed as a whole: the run's other steps must not call it."""
        row = {"run_id": run_id, "partition": day, "kind": kind, "message": message, "created_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, run_halts, [row]))

    def halt_of(self, run_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(run_halts).where(run_halts.c.run_id == run_id)).first()
        return dict(row._mapping) if row else None

    def claim_source(self, source: str) -> None:
        """Record which source this warehouse holds, or refuse a different kind of source: the
        embedded sample API's demo data never goes into a real API's warehouse, nor the reverse."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            held = conn.execute(sa.select(warehouse_meta.c.value).where(warehouse_meta.c.key == "source")).scalar()
            if held is None:
                conn.execute(sa.insert(warehouse_meta).values(key="source", value=source, updated_at=now))
                return
        if (held == "sample") != (source == "sample"):
            have = "the embedded sample API's demo data" if held == "sample" else f"the data of {held}"
            want = "the embedded sample API (SOURCE_API_URL is not set)" if source == "sample" else source
            raise SourceMismatchError(
                f"this warehouse holds {have}; syncing {want} into it would mix the two. "
                "Set SOURCE_API_URL to the API this warehouse belongs to, or WAREHOUSE_URL to another warehouse."
            )
