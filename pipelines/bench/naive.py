"""The baseline: "one queue job per sub-job", honestly implemented, in a process of its own.

Each sub-job fetches the whole resource (no projection), always makes the detail call, and writes
its row with one single-row upsert in a transaction of its own. It is given the benefit of no
queue at all (an in-process pool of ``concurrency`` workers) and the same request pacing, 429
handling and concurrency cap as the pipeline, so that what differs is calls and statements.

``python -m pipelines.bench.naive`` reads WAREHOUSE_URL and SOURCE_DECLARATION (its URL, rate
and concurrency) and prints its figures as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from datetime import UTC, date, datetime

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.core.fingerprint import fingerprint
from pipelines.settings import load_settings
from pipelines.source.client import retry_after_seconds
from pipelines.source.declaration_file import load_declaration
from pipelines.source.ratecontrol import INF, RatePolicy
from pipelines.source.shared_rate import LocalRate
from pipelines.warehouse.migrate import prepare
from pipelines.warehouse.schema import resources
from pipelines.warehouse.store import create_warehouse_engine


class NaiveDay:
    def __init__(self, api_url: str, warehouse_url: str, rate: float, concurrency: int) -> None:
        self.engine = create_warehouse_engine(warehouse_url)
        prepare(self.engine)
        self.rate = LocalRate(RatePolicy(ceiling=rate if rate > 0 else INF))
        self.http = httpx.AsyncClient(
            base_url=api_url,
            timeout=httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.concurrency = concurrency
        self.calls = self.throttled = self.statements = 0
        self.bytes_received = 0

        @sa.event.listens_for(self.engine, "before_cursor_execute")
        def _count(*_args) -> None:
            self.statements += 1

    async def get(self, path: str, params: dict | None = None) -> httpx.Response:
        while True:
            wait = await self.rate.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            response = await self.http.get(path, params=params)
            self.calls += 1
            self.bytes_received += len(response.content)
            if response.status_code != 429:
                return response
            self.throttled += 1
            await self.rate.throttled(retry_after_seconds(response.headers.get("retry-after")))

    def write(self, record: dict, details: dict, day: date) -> None:
        now = datetime.now(UTC)
        row = {
            "resource_id": record["id"],
            "status": "live",
            "fingerprint": fingerprint(record, ["version"]),
            "etag": None,
            "projected": None,
            "details": details,
            "first_seen": now,
            "last_changed": now,
            "last_checked": now,
            "last_partition": day,
        }
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(resources).values(row)
        keep = {c: stmt.excluded[c] for c in ("fingerprint", "details", "last_changed", "last_checked")}
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["resource_id"], set_=keep))

    async def sub_job(self, rid: str, day: date) -> None:
        record = (await self.get(f"/items/{rid}")).json()  # the whole resource: no projection
        details = (await self.get(f"/items/{rid}/details")).json()  # always
        await asyncio.to_thread(self.write, record, details, day)

    async def run(self, day: date) -> dict:
        started = time.perf_counter()
        ids: list[str] = []
        cursor: str | None = ""
        while cursor is not None:
            page = (await self.get("/items", {"cursor": cursor, "limit": "500", "fields": "id"})).json()
            ids += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
        listing_calls = self.calls
        queue: asyncio.Queue[str] = asyncio.Queue()
        for rid in ids:
            queue.put_nowait(rid)

        async def worker() -> None:
            while not queue.empty():
                await self.sub_job(queue.get_nowait(), day)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        await self.http.aclose()
        return {
            "sub_jobs": len(ids),
            "run_wall_s": time.perf_counter() - started,
            "client_sync_calls": self.calls - listing_calls,
            "client_listing_calls": listing_calls,
            "client_throttled": self.throttled,
            "bytes_received": self.bytes_received,
            "statements": self.statements,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def main(argv: list[str] | None = None) -> None:
    import sys

    settings = load_settings()
    day = date.fromisoformat((argv or sys.argv[1:])[0])
    source = load_declaration(settings.source_declaration) if settings.source_declaration else None
    if source is None or source.client.base_url is None:
        raise SystemExit("the naive day needs SOURCE_DECLARATION: a served sample API's, with its client.base_url")
    rate = source.rate
    naive = NaiveDay(source.client.base_url, settings.warehouse_url, rate.requests_per_second, rate.max_concurrency)
    print(json.dumps(asyncio.run(naive.run(day))))


if __name__ == "__main__":
    main()
