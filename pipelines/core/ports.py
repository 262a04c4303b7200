"""What the sync core needs of the world, as small interfaces: a store for a day's batches and a
prober of the API. ``warehouse.Warehouse`` and ``source.SourceApiClient`` implement them; the
core imports neither, nor anything of ours (``make lint``'s import contracts hold it), and a
test can hand it fakes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from pipelines.core.listing_probe import ListingMode
from pipelines.core.meter import CallMeter, Detail, Probe
from pipelines.core.outcomes import BatchResult, Member, StoredState


def utcnow() -> datetime:
    return datetime.now(UTC)


class LostClaimError(RuntimeError):
    """Another owner took the batch over (our lease expired); our write was rolled back."""


@dataclass(frozen=True, kw_only=True)
class BatchRecord:
    """Everything a finished batch writes, in one transaction."""

    partition: date
    batch_no: int
    result: BatchResult  # routed: no FAILED left
    members: Mapping[str, Member]
    meter: CallMeter
    started_at: datetime
    finished_at: datetime
    run_id: str
    claim_token: str


class BatchStore(Protocol):
    """The ledger's claims, a batch's members and their stored states, and its one write."""

    def claim_batch(
        self,
        day: date,
        batch_no: int,
        run_id: str,
        token: str,
        lease_seconds: float,
        now: datetime,
        force: bool = False,
    ) -> bool: ...

    def renew_claim(self, day: date, batch_no: int, token: str, lease_seconds: float, now: datetime) -> bool: ...

    def release_claim(self, day: date, batch_no: int, token: str, now: datetime) -> bool: ...

    def ledger_status(self, day: date, batch_nos: list[int]) -> dict[int, tuple[str, datetime]]: ...

    def batch_members(self, day: date, batch_no: int) -> list[Member]: ...

    def members_of(self, day: date, batch_nos: list[int]) -> list[Member]:
        """The sub-jobs of all these batches (one read)."""
        ...

    def listed_ids(self, day: date, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the day's listing served."""
        ...

    def stored_states(self, ids: Sequence[str]) -> dict[str, StoredState]: ...

    def listing_mode(self, day: date) -> ListingMode | None: ...

    def listed(self, day: date, ids: Sequence[str]) -> dict[str, tuple[str, dict | None, Any]]:
        """What the day's listing served of ``ids``: fingerprint, fields, and carried detail."""
        ...

    def record_batch(self, rec: BatchRecord) -> None:
        """Write the batch whole, or raise LostClaimError (and write nothing)."""


class Prober(Protocol):
    """The API's calls a batch makes: probes (one id, or ``bulk_size`` at once) and details."""

    @property
    def id_type(self) -> str: ...

    @property
    def bulk_size(self) -> int | None: ...

    def bulk_safe(self, rid: str) -> bool: ...

    async def probe(
        self, rid: str, fields: Sequence[str] | None = None, etag: str | None = None, meter: CallMeter | None = None
    ) -> Probe: ...

    async def bulk_probe(
        self, rids: Sequence[str], fields: Sequence[str] | None = None, meter: CallMeter | None = None
    ) -> tuple[dict[str, dict], list[str]]: ...

    async def detail(self, rid: str, meter: CallMeter | None = None) -> Detail: ...

    def embedded(self, record: dict, rid: str, kind: str) -> tuple[dict, Any]:
        """``record`` (an answer of ``kind``) without the detail it carries, and that detail when
        the source declares it there and it is usable (else None: a detail call is made)."""
        ...
