"""Ids in URLs, passwords in URLs, secrets in text and logs, bodies with a cap. Pure."""

import asyncio
import gzip
import logging
import zlib

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.core.ids import MAX_ID_LENGTH, id_problem
from pipelines.core.redact import Redactor, register, url_secrets
from pipelines.core.urls import id_segment, item_path, mask_url, placeholders, strip_userinfo
from pipelines.source.body import BodyTooLarge, UnsupportedEncoding, read_body

SEGMENT_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%")


@given(st.text(min_size=1, max_size=60))
def test_an_id_is_always_exactly_one_path_segment(rid):
    segment = id_segment(rid)
    assert set(segment) <= SEGMENT_SAFE  # no /, ?, #, or anything a URL parser would act on
    assert segment not in (".", "..")
    url = httpx.URL("http://api" + item_path("/items/{id}/details", rid))
    assert url.raw_path.decode().split("/")[2] == segment and url.raw_path.decode().endswith("/details")


@pytest.mark.parametrize(
    ("rid", "path"), [("a/b", "/items/a%2Fb"), ("..", "/items/%2E%2E"), ("q?x=1#f", "/items/q%3Fx%3D1%23f")]
)
def test_hostile_ids_in_a_path(rid, path):
    assert item_path("/items/{id}", rid) == path


def test_placeholders_are_listed_with_their_spec():
    assert placeholders("/v1/{id}/x/{tenant}/{id!r}/{n:>3}") == ["id", "tenant", "id!r", "n:>3"]


@pytest.mark.parametrize(
    ("problem_id", "problem"),
    [
        ("", "empty"),
        ("a\nb", "control"),
        ("a\x00", "control"),
        ("\x7f", "control"),
        ("\ud800", "control"),
        ("x" * (MAX_ID_LENGTH + 1), "201"),
    ],
)
def test_ids_no_url_or_column_can_carry(problem_id, problem):
    assert problem in id_problem(problem_id)


def test_ids_are_otherwise_anything():
    assert id_problem("a/b?c#d%..") is None and id_problem("x" * MAX_ID_LENGTH) is None and id_problem("ünï") is None


def test_passwords_leave_urls():
    url = "https://svc:p%40ss@api.example.com:8443/v1"
    assert strip_userinfo(url) == "https://api.example.com:8443/v1"
    assert mask_url(url) == "https://svc:***@api.example.com:8443/v1"
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert set(url_secrets(url)) == {"p%40ss", "p@ss", "c3ZjOnBAc3M="}


def test_the_redactor_scrubs_text_headers_bodies_and_urls():
    scrub = Redactor(["tok-123456", None, "ab"])  # too short to be a secret: left alone
    assert scrub.text("Bearer tok-123456 and ab") == "Bearer [redacted] and ab"
    assert scrub.headers({"X-Echo": "tok-123456", "Authorization": "anything"}) == {
        "X-Echo": "[redacted]",
        "Authorization": "[redacted]",
    }
    assert scrub.bytes(b'{"h": "tok-123456"}') == b'{"h": "[redacted]"}'
    assert scrub.url("http://u:tok-123456@h/x?t=tok-123456") == "http://h/x?t=[redacted]"


def test_secrets_never_reach_a_log_line(caplog):
    register(["hook-secret-path-0987"])
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").info("HTTP Request: POST %s %r", "https://hooks/x/hook-secret-path-0987", 500)
    assert "hook-secret-path-0987" not in caplog.text and "[redacted]" in caplog.text


class Stream(httpx.AsyncByteStream):
    def __init__(self, chunks):
        self.chunks = chunks

    async def __aiter__(self):
        for c in self.chunks:
            yield c


def body(payload: bytes, encoding: str | None, limit: int, chunk: int = 1000) -> bytes:
    headers = {"content-encoding": encoding} if encoding else {}
    parts = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    response = httpx.Response(200, headers=headers, stream=Stream(parts))
    return asyncio.run(read_body(response, limit))


@pytest.mark.parametrize("encoding", [None, "gzip", "deflate-zlib", "deflate-raw"])
def test_bodies_are_decoded_and_capped_after_decompression(encoding):
    data = b'{"x": "' + b"a" * 50_000 + b'"}'
    packed = {
        None: data,
        "gzip": gzip.compress(data),
        "deflate-zlib": zlib.compress(data),
        "deflate-raw": zlib.compress(data)[2:-4],
    }[encoding]
    header = encoding and encoding.split("-")[0]
    assert body(packed, header, limit=100_000) == data
    with pytest.raises(BodyTooLarge):
        body(packed, header, limit=10_000)


def test_an_unknown_or_corrupt_encoding_is_not_decoded_blindly():
    with pytest.raises(UnsupportedEncoding):
        body(b"xx", "br", 100)
    with pytest.raises(UnsupportedEncoding):
        body(b"not gzip at all", "gzip", 100)
