"""Run halts and the warehouse's identity: the guards against mixing and against carrying on."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import run_halts, warehouse_meta
from pipelines.warehouse.upsert import upsert


class SourceMismatchError(RuntimeError):
    """The warehouse holds another source's data."""


class Runs(Repository):
    def halt_run(self, run_id: str, day: date | None, kind: str, message: str) -> None:
        """The API failed as a whole: the run's other steps must not call it."""
        row = {"run_id": run_id, "partition": day, "kind": kind, "message": message, "created_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, run_halts, [row]))

    def halt_of(self, run_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(run_halts).where(run_halts.c.run_id == run_id)).first()
        return dict(row._mapping) if row else None

    def claim_source(self, source: str, owner: str | None = None) -> None:
        """Record which source this warehouse (or namespace) holds, or refuse another: the
        embedded sample API's demo data never goes into a real API's warehouse, nor the reverse;
        and a namespace belongs to the source that first wrote it (``owner``: the source's name;
        None: the source configured by environment, in the warehouse's own tables)."""
        now = datetime.now(UTC)
        owned_by = owner or "(the source configured by environment)"
        with self.engine.begin() as conn:
            held: dict[str, str] = {
                k: v for k, v in conn.execute(sa.select(warehouse_meta.c.key, warehouse_meta.c.value))
            }
            missing = {k: v for k, v in (("source", source), ("owner", owned_by)) if k not in held}
            for key, value in missing.items():
                conn.execute(sa.insert(warehouse_meta).values(key=key, value=value, updated_at=now))
        if held.get("owner", owned_by) != owned_by:
            raise SourceMismatchError(
                f"these tables belong to {held['owner']}, not to {owned_by}: two sources would mix their ids, "
                "fingerprints and queues. Name the source otherwise, or point WAREHOUSE_URL at another warehouse."
            )
        held_source = held.get("source", source)
        if (held_source == "sample") != (source == "sample"):
            have = "the embedded sample API's demo data" if held_source == "sample" else f"the data of {held_source}"
            want = "the embedded sample API (the declaration's client.sample)" if source == "sample" else source
            raise SourceMismatchError(
                f"this warehouse holds {have}; syncing {want} into it would mix the two. "
                "Declare client.base_url as the API this warehouse belongs to, or point WAREHOUSE_URL at another warehouse."
            )

    def learned_rate(self, budget: str) -> float | None:
        """The rate the source's last client learned from the API's 429s (None: none yet)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(warehouse_meta.c.value).where(warehouse_meta.c.key == f"learned_rate:{budget}")
            ).scalar()
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def remember_rate(self, budget: str, rate: float | None) -> None:
        """Keep what a client learned of the API's rate for the next one (nothing: keep the last)."""
        if rate is None:
            return
        row = {"key": f"learned_rate:{budget}", "value": f"{rate:.6g}", "updated_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, warehouse_meta, [row]))
