"""A listing accounts for every item, or says it could not: its bounds (a runaway stops), its
completeness (a stated total, shifting order, a full first page with no next) and its refused
items, first as pure logic, then against the hostile API on loopback."""

import asyncio

import pytest

from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines.source.config import Credentials
from pipelines.source.declaration import declare
from pipelines.source.listing_account import ListingAccount, ListingRunaway
from pipelines_tests.hostile_api import HostileApi

# -- the account, pure ---------------------------------------------------------------------


def test_ids_are_counted_once_and_duplicates_apart():
    account = ListingAccount("s: listing /items", page_size=3)
    assert account.page(["a", "b", "c"]) == ["a", "b", "c"]
    assert account.page(["c", "d"]) == ["d"]
    assert (account.distinct, account.duplicates, account.served, account.pages) == (4, 1, 5, 2)
    assert account.complete  # a cursor listing may repeat an item without skipping one


def test_an_offset_listing_that_served_a_duplicate_skipped_one():
    account = ListingAccount("s: listing /items", page_size=2, offset_paged=True)
    account.page(["a", "b"])
    account.page(["b", "c"])
    assert not account.complete
    assert "served twice" in account.verdict() and "INCOMPLETE" in account.verdict()


def test_pages_that_add_nothing_new_stop_the_listing():
    account = ListingAccount("shop: listing /products", page_size=2, max_pages_without_new=3)
    account.page(["a", "b"])
    account.page([])
    account.page(["a"])
    with pytest.raises(ListingRunaway, match="shop: listing /products: 3 pages in a row added no new id"):
        account.page([])


def test_more_pages_than_the_stated_total_allows_stop_the_listing():
    account = ListingAccount("s: listing /items", page_size=10)
    for n in range(4):  # 30 stated, 10 a page: 3 pages, 2 spare
        account.page([f"{n}-{i}" for i in range(10)], total=30)
    account.page([f"4-{i}" for i in range(10)], total=30)
    with pytest.raises(ListingRunaway, match="more than the stated total of 30"):
        account.page([f"5-{i}" for i in range(10)], total=30)


def test_a_stated_total_the_ids_do_not_reach_is_incomplete_refused_items_count():
    account = ListingAccount("s: listing /items", page_size=10)
    account.page(["a", "b"], total=4)
    assert not account.complete and "stated 4 items; 2 distinct ids" in account.verdict()
    account.refuse("{'nested': 1}", "is not a string id")
    account.page(["c"], total=4)
    assert account.complete  # 3 ids and 1 refused item: all 4 accounted for
    assert account.figures()["refused"] == 1


def test_a_full_first_page_with_no_next_page_is_incomplete_unless_a_total_says_so():
    account = ListingAccount("s: listing /items", page_size=3)
    account.page(["a", "b", "c"])
    account.last_page(has_next=False)
    assert not account.complete and "the first page was full" in account.verdict()
    confirmed = ListingAccount("s: listing /items", page_size=3)
    confirmed.page(["a", "b", "c"], total=3)
    confirmed.last_page(has_next=False)
    assert confirmed.complete


# -- against the hostile API -----------------------------------------------------------------


@pytest.fixture
def api():
    server = HostileApi()
    yield server
    server.close()


def walk(api: HostileApi, changes: dict) -> tuple[list[str], ListingAccount, int]:
    """Every id one walk of the listing yields, its account, and the calls it made."""
    source = declare(api.url, changes)
    settings = ClientSettings(api.url, source, Credentials())

    async def go():
        async with SourceApiClient(settings) as client:
            account = client.listing_account()
            ids = [rid async for page in client.iter_ids(account=account) for rid in page]
            return ids, account, client.meter.calls["listing"]

    return asyncio.run(go())


CURSOR = {"listing.page_size": 100}
LINK = {"listing.page_size": 100, "listing.page_size_param": "per_page", "listing.data_selector": ""}
LINK_PAGES = {**LINK, "listing.paginator": {"type": "link_header"}}
OFFSET = {"listing.page_size": 100, "listing.paginator": {"type": "offset"}}


@pytest.mark.parametrize("served", ["empty", "same"])
def test_a_cursor_that_advances_for_ever_stops_after_pages_that_add_nothing(api, served):
    api.mode.listing = [f"r{i}" for i in range(300)]
    api.mode.advancing_cursor = served
    ids, account, calls = walk(api, CURSOR)
    assert len(ids) == 100 and calls == 1 + 5  # the first page, then five pages that added nothing
    assert not account.complete and "5 pages in a row added no new id" in account.verdict()
    assert "source: listing /items" in account.verdict()  # names the listing


def test_new_ids_for_ever_stop_at_what_the_stated_total_allows(api):
    api.mode.listing = [f"r{i}" for i in range(300)]  # the total the header states
    api.mode.new_ids_for_ever, api.mode.total_header = True, True
    ids, account, calls = walk(api, {**CURSOR, "listing.total_header": "X-Total-Count"})
    assert calls == 6 and len(ids) == 500  # 3 pages of 100 allowed, 2 spare: the sixth stops it, unused
    assert not account.complete and "more than the stated total of 300" in account.verdict()


def test_relative_link_references_resolve_against_the_pages_own_url(api):
    api.mode.listing = [f"r{i}" for i in range(300)]
    api.mode.listing_style, api.mode.relative_links = "link", True
    ids, account, calls = walk(api, LINK_PAGES)
    assert ids == api.mode.listing and calls == 3
    assert account.complete
    assert api.targets()[1:] == ["/items?page=2&per_page=100", "/items?page=3&per_page=100"]


def test_an_offset_listing_whose_order_shifts_between_pages_is_incomplete(api):
    api.mode.listing = [f"r{i}" for i in range(300)]
    api.mode.listing_style, api.mode.unstable_order = "offset", True
    ids, account, _ = walk(api, OFFSET)
    assert len(ids) < 300 and account.duplicates == 300 - len(ids)
    assert not account.complete and "served twice" in account.verdict()


def test_an_unstable_order_checked_against_a_stated_total_says_how_many_are_missing(api):
    api.mode.listing = [f"r{i}" for i in range(300)]
    api.mode.listing_style, api.mode.unstable_order, api.mode.total_header = "offset", True, True
    ids, account, _ = walk(api, {**OFFSET, "listing.total_header": "X-Total-Count"})
    assert f"the API stated 300 items; {len(ids)} distinct ids were listed" in account.verdict()


def test_one_item_with_an_id_of_the_wrong_type_is_refused_by_name_and_the_rest_kept(api):
    api.mode.listing = [f"r{i}" for i in range(300)]
    api.mode.bad_items = {7: {"id": {"oid": "r7"}}, 150: ["not", "an", "object"]}
    api.mode.total_header = True
    ids, account, _ = walk(api, {**CURSOR, "listing.total_header": "X-Total-Count"})
    assert len(ids) == 298 and "r7" not in ids and "r8" in ids
    assert account.refused == 2 and account.complete  # 298 ids and 2 refused: the 300 stated
    assert account.refused_sample == [
        ("{'oid': 'r7'}", "is not a string id (at id: dict)"),
        ("['not', 'an', 'object']", "is not an object but list"),
    ]


def test_a_link_listing_that_pages_only_when_asked_for_a_page_is_incomplete(api):
    """A real server (json-server) sends its Link header only to a request that names a page:
    declared without ``listing.params``, the first page was all that was listed, green."""
    api.mode.listing = [f"r{i}" for i in range(600)]
    api.mode.listing_style, api.mode.link_needs_page = "link", True
    ids, account, calls = walk(api, LINK_PAGES)
    assert (len(ids), calls) == (100, 1)
    assert not account.complete and "the first page was full (100 items) and named no next page" in account.verdict()

    api.mode.total_header = True  # the server said X-Total-Count: 600
    ids, account, _ = walk(api, {**LINK_PAGES, "listing.total_header": "X-Total-Count"})
    assert len(ids) == 100 and "the API stated 600 items; 100 distinct ids were listed" in account.verdict()

    ids, account, calls = walk(api, {**LINK_PAGES, "listing.params": {"page": "1"}})  # asked as the server wants
    assert (len(ids), calls) == (600, 6) and account.complete


def test_a_page_number_listing_stops_at_the_stated_total_without_an_empty_page(api):
    api.mode.listing = [f"r{i}" for i in range(300)]
    api.mode.listing_style, api.mode.total_header = "link", True
    pages = {**LINK, "listing.paginator": {"type": "page_number"}, "listing.total_header": "X-Total-Count"}
    ids, account, calls = walk(api, pages)
    assert ids == api.mode.listing and calls == 3 and account.complete
