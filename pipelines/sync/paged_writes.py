"""A listing's pages written to the warehouse while the next pages are fetched. No Dagster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from pipelines.warehouse.watchlist import WRITE_CHUNK, WatchlistUpdate

T = TypeVar("T")


async def write_while_listing(
    pages: AsyncIterator[list[T]], write: Callable[[list[T]], WatchlistUpdate], update: WatchlistUpdate
) -> None:
    """The listing's pages handed to ``write`` (in a worker thread) ``WRITE_CHUNK`` items at a
    time, each chunk written while the next pages are fetched: the listing waits on the API, the
    write on the database. One write at a time, in the listing's order. What was listed before a
    failure is still written."""
    held: list[T] = []
    writing: asyncio.Task[WatchlistUpdate] | None = None

    async def flush(chunk: list[T]) -> None:
        nonlocal writing
        if writing is not None:
            update.add(await writing)
        writing = asyncio.create_task(asyncio.to_thread(write, chunk))

    try:
        async for page in pages:
            held += page
            if len(held) >= WRITE_CHUNK:
                await flush(held)
                held = []
    finally:
        if held:
            await flush(held)
        if writing is not None:
            update.add(await writing)
