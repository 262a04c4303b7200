"""Values passed between steps, kept in the warehouse so that steps may run on any worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.warehouse.repository import Repository
from pipelines.warehouse.schema import step_outputs
from pipelines.warehouse.upsert import upsert


class StepOutputs(Repository):
    def put_output(self, key: str, run_id: str, value: Any) -> None:
        """Store (or replace: a re-executed step writes again) the value under ``key``."""
        row = {"key": key, "run_id": run_id, "value": value, "stored_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            conn.execute(upsert(self.dialect, step_outputs, [row]))

    def get_output(self, key: str) -> Any:
        """The value stored under ``key``; KeyError naming it when no step stored one."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(step_outputs.c.value).where(step_outputs.c.key == key)).first()
        if found is None:
            raise KeyError(f"no step output stored under {key!r} (was the upstream step run?)")
        return found.value

    def prune_outputs(self, before: datetime) -> int:
        """Forget values stored before ``before``; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(step_outputs).where(step_outputs.c.stored_at < before)).rowcount
