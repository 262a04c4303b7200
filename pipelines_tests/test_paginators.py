"""Paginators decide the next page from the one served, as dlt's do. Pure."""

import httpx
import pytest

from pipelines.source import declaration as d
from pipelines.source.paginators import NextPage, link_target, pager_for


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://a.example/p?page_info=x&limit=2>; rel="next"', "https://a.example/p?page_info=x&limit=2"),
        ('<https://a/p?1>; rel="previous", <https://a/p?3>; rel="next"', "https://a/p?3"),
        ('<https://a/p?3>; rel="next last"', "https://a/p?3"),
        ('<https://a/p?1>; rel="previous"', None),
        ("", None),
    ],
)
def test_the_link_header_next_target(header, expected):
    assert link_target(header) == expected


def walk(paginator, pages, page_size=2):
    """The requests a pager makes over ``pages`` (each: headers, body, number of records)."""
    pager = pager_for(paginator, page_size, "limit")
    params, sent = pager.first(), []
    for headers, body, records in pages:
        sent.append(params)
        following = pager.after(params, httpx.Headers(headers), body, records)
        if following is None:
            return sent, None
        params = following.params if following.params is not None else {"url": following.url}
    return sent, params


def test_cursor_follows_the_body_until_it_is_null():
    spec = d.CursorPaginator(type="cursor", cursor_path="meta.next", cursor_param="after")
    sent, last = walk(spec, [({}, {"meta": {"next": "c1"}}, 2), ({}, {"meta": {"next": None}}, 1)])
    assert sent == [{"limit": "2"}, {"limit": "2", "after": "c1"}] and last is None


def test_offset_stops_on_a_short_page_or_the_total():
    spec = d.OffsetPaginator(type="offset")
    sent, _ = walk(spec, [({}, {}, 2), ({}, {}, 2), ({}, {}, 1)])
    assert [p["offset"] for p in sent] == ["0", "2", "4"]
    spec = d.OffsetPaginator(type="offset", total_path="total")
    sent, last = walk(spec, [({}, {"total": 4}, 2), ({}, {"total": 4}, 2)])
    assert [p["offset"] for p in sent] == ["0", "2"] and last is None


def test_page_number_counts_from_its_base_and_stops_on_an_empty_page():
    spec = d.PageNumberPaginator(type="page_number", base_page=0)
    sent, _ = walk(spec, [({}, {}, 2), ({}, {}, 2), ({}, {}, 0)])
    assert [p["page"] for p in sent] == ["0", "1", "2"]


def test_a_header_cursor_is_sent_back_until_the_header_is_gone():
    spec = d.HeaderCursorPaginator(type="header_cursor", cursor_header="X-Next-Page-Token", cursor_param="token")
    pages = [({"X-Next-Page-Token": "t1"}, {}, 2), ({"x-next-page-token": " t2 "}, {}, 2), ({}, {}, 1)]
    sent, last = walk(spec, pages)
    assert sent == [{"limit": "2"}, {"limit": "2", "token": "t1"}, {"limit": "2", "token": "t2"}] and last is None


def test_next_url_and_link_header_answer_a_url():
    pager = pager_for(d.NextUrlPaginator(type="next_url", next_url_path="links.next"), 2, None)
    assert pager.after({}, httpx.Headers(), {"links": {"next": "/p?2"}}, 2) == NextPage(url="/p?2")
    assert pager.after({}, httpx.Headers(), {"links": {"next": None}}, 2) is None
    pager = pager_for(d.LinkHeaderPaginator(type="link_header"), 2, None)
    assert pager.after({}, httpx.Headers({"Link": '</p?2>; rel="next"'}), {}, 2) == NextPage(url="/p?2")


def test_a_total_that_is_no_number_is_an_error():
    pager = pager_for(d.OffsetPaginator(type="offset", total_path="total"), 2, "limit")
    with pytest.raises(ValueError, match="not a number"):
        pager.after({}, httpx.Headers(), {"total": "many"}, 2)


def test_every_declared_paginator_and_auth_has_its_class():
    """One factory each: a type the declaration accepts always has the class that carries it."""
    from pipelines.source.auth import AUTHENTICATORS
    from pipelines.source.declaration_file import _tags  # noqa: PLC2701
    from pipelines.source.paginators import PAGERS

    assert set(PAGERS) == _tags(d.Paginator)
    assert set(AUTHENTICATORS) == _tags(d.Auth)
    assert {name for name, pager in PAGERS.items() if pager.by_position} == {"offset", "page_number"}
