"""A listing's account: what it served, page by page, and whether that accounts for every item. Pure.

The listing decides what is tracked, so a listing that stops early shrinks the watchlist in
silence unless something counts what it should have served. The account is that count, kept as
the pages arrive:

* every item is either an id (counted once: a repeat is a duplicate) or refused by name (no
  usable id where the declaration says it is); one bad item never sinks the others;
* a listing is **bounded by what it can contain**: pages that add no new id for a while (a
  cursor that advances over empty pages, or over the same items), or more pages than the total
  the API states allows, stop it (``ListingRunaway``) before it bills for ever;
* at its end it is **complete** only if nothing says items were missed: the distinct ids (and
  refused items) reach the total the API stated; an offset or page-number listing served no
  duplicate (its order shifted between pages: for every item served twice another was skipped);
  a first page as full as asked for named a next page (else the API may page only when asked
  for a page number, or serve fewer per page than declared).

An incomplete listing deactivates nothing, and the day's next run lists again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

REFUSED_SAMPLE = 20  # refused items kept by name


class ListingRunaway(Exception):
    """The listing pages past anything it can contain; the message names the listing."""


@dataclass
class ListingAccount:
    """One walk of a listing. ``where`` names it in every message (``shop: listing /v1/products.json``)."""

    where: str
    page_size: int
    offset_paged: bool = False  # offset or page number: a duplicate means a skipped item
    max_pages_without_new: int = 5
    stated_total: int | None = None  # the last total the API stated (body or header)
    pages: int = 0
    served: int = 0  # items, duplicates and refused ones included
    duplicates: int = 0
    refused: int = 0
    refused_sample: list[tuple[str, str]] = field(default_factory=list)  # (shown, problem)
    largest_page: int = 0
    pages_without_new: int = 0
    first_page_full_without_next: bool = False
    stopped: str | None = None  # why the walk ended early (a runaway, an outage, a stop)
    present: float | None = None  # the API's own clock (its Date header, epoch seconds), the latest seen
    _seen: set[int] = field(default_factory=set, repr=False)  # hashes of the ids so far

    @property
    def distinct(self) -> int:
        return len(self._seen)

    def page(self, ids: list[str], total: int | None = None) -> list[str]:
        """A page's usable ids (refused items go through ``refuse`` first); answers the ids
        not served before, in order. Raises ``ListingRunaway`` past the listing's bounds."""
        self.pages += 1
        self.served += len(ids)
        self.largest_page = max(self.largest_page, len(ids))
        if total is not None:
            self.stated_total = total
        new = []
        for rid in ids:
            key = hash(rid)
            if key in self._seen:
                self.duplicates += 1
            else:
                self._seen.add(key)
                new.append(rid)
        self.pages_without_new = 0 if new else self.pages_without_new + 1
        self._check_bounds()
        return new

    def clock(self, present: float | None) -> None:
        """The API's clock, as a page's ``Date`` header told it."""
        if present is not None and (self.present is None or present > self.present):
            self.present = present

    def refuse(self, shown: str, problem: str) -> None:
        self.served += 1
        self.refused += 1
        if len(self.refused_sample) < REFUSED_SAMPLE:
            self.refused_sample.append((shown, problem))

    def last_page(self, has_next: bool) -> None:
        """Note that the walk found no next page after ``self.pages`` pages (``has_next``: it did)."""
        if self.pages == 1 and not has_next and self.largest_page >= self.page_size > 1:
            self.first_page_full_without_next = True

    def stop(self, why: str) -> None:
        """The walk ended early (an outage, a stop the run was told): the listing is incomplete."""
        self.stopped = self.stopped or why

    def _check_bounds(self) -> None:
        if self.pages_without_new >= self.max_pages_without_new:
            raise ListingRunaway(
                f"{self.where}: {self.pages_without_new} pages in a row added no new id (a cursor that advances "
                f"over empty or repeated pages); stopped after {self.pages} pages and {self.distinct} ids "
                "(listing.max_pages_without_new)"
            )
        if self.stated_total is not None:
            per_page = max(self.largest_page, 1)
            allowed = math.ceil(self.stated_total / per_page) + 2
            if self.pages > allowed:
                raise ListingRunaway(
                    f"{self.where}: {self.pages} pages served, more than the stated total of {self.stated_total} "
                    f"items allows at {per_page} a page ({allowed}, two spare); stopped with {self.distinct} ids"
                )

    def problems(self) -> list[str]:
        """Why the listing cannot account for its items (empty: it can)."""
        found = []
        if self.stopped:
            found.append(self.stopped)
        if self.stated_total is not None and self.distinct + self.refused < self.stated_total:
            found.append(
                f"the API stated {self.stated_total} items; {self.distinct} distinct ids"
                + (f" and {self.refused} refused items" if self.refused else "")
                + " were listed"
            )
        if self.offset_paged and self.duplicates:
            found.append(
                f"{self.duplicates} items were served twice: the listing's order shifted between pages, so as many "
                "were skipped"
            )
        if self.first_page_full_without_next and self.stated_total is None:
            found.append(
                f"the first page was full ({self.largest_page} items) and named no next page: the API may page "
                "only when a page is asked for (listing.params), or the page size may be smaller than declared"
            )
        return found

    @property
    def complete(self) -> bool:
        return not self.problems()

    def verdict(self) -> str:
        """One line: complete, or incomplete and why."""
        counted = (
            f"{self.distinct} ids in {self.pages} pages ({self.duplicates} duplicates, {self.refused} refused"
            + (f", {self.stated_total} stated" if self.stated_total is not None else "")
            + ")"
        )
        problems = self.problems()
        return (
            f"{self.where}: complete, {counted}"
            if not problems
            else (f"{self.where}: INCOMPLETE, {counted}: " + "; ".join(problems))
        )

    def figures(self) -> dict[str, int | str | bool]:
        return {
            "complete": self.complete,
            "pages": self.pages,
            "served": self.served,
            "distinct": self.distinct,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "stated_total": -1 if self.stated_total is None else self.stated_total,
            "problem": "; ".join(self.problems()),
        }
