import pytest

from pipelines.core.errors import ErrorClass, SourceError, classify_status, safe_headers
from pipelines.source.client import retry_after_seconds


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (304, None),
        (429, ErrorClass.THROTTLED),
        (500, ErrorClass.TRANSIENT),
        (502, ErrorClass.TRANSIENT),
        (503, ErrorClass.TRANSIENT),
        (504, ErrorClass.TRANSIENT),
        (404, ErrorClass.GONE),
        (410, ErrorClass.GONE),
        (400, ErrorClass.PERMANENT),
        (401, ErrorClass.AUTH),  # the credential's failure: the run stops, no resource is quarantined
        (403, ErrorClass.AUTH),
        (422, ErrorClass.PERMANENT),
        (301, ErrorClass.PERMANENT),  # redirects are not followed: not an answer
        (302, ErrorClass.PERMANENT),
        (307, ErrorClass.PERMANENT),
    ],
)
def test_status_classes(status, expected):
    assert classify_status(status) == expected


def test_secret_headers_are_masked():
    headers = {"Authorization": "Bearer s3cret", "Set-Cookie": "a=b", "ETag": '"3"'}
    assert safe_headers(headers) == {"Authorization": "[redacted]", "Set-Cookie": "[redacted]", "ETag": '"3"'}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        (None, 1.0),
        ("garbage", 1.0),
        # a 0, a negative number, NaN or a past date would have the client call again at once, for ever
        ("0", 0.5),
        ("-4", 0.5),
        ("NaN", 1.0),
        ("nan", 1.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.5),
        ("Wed, 99 Foo 2015 07:28:00 GMT", 1.0),
    ],
)
def test_retry_after_seconds_have_a_floor(value, expected):
    assert retry_after_seconds(value, floor=0.5) == expected


def test_retry_after_http_date_is_in_the_future():
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2099 07:28:00 GMT") > 1000


def test_an_infinite_retry_after_stays_infinite_for_the_caller_to_refuse():
    assert retry_after_seconds("inf") == float("inf")


def test_source_error_says_what_and_where():
    err = SourceError(ErrorClass.PERMANENT, "HTTP 403", url="http://api/items/x", status=403)
    assert str(err) == "permanent: HTTP 403 (GET http://api/items/x -> 403)"


@pytest.mark.parametrize(
    "declared",
    [
        {},
        {"errors": {"transient": [500, 503, 520], "gone": [404, 410, 451]}},
        {"errors": {"throttle": [420, 429]}, "conditional": {"not_modified_status": 399}},
        {"conditional": None},
    ],
)
def test_the_statuses_the_client_takes_without_judging_are_those_judge_finds_usable(declared):
    """The client's fast path (``usable_statuses``) answers as ``judge`` would, for every status,
    whatever the answer's headers and body and whether it was sent conditional."""
    from multidict import CIMultiDict, CIMultiDictProxy

    from pipelines.source.answers import judge, usable_statuses
    from pipelines.source.declaration import SourceDeclaration, declare
    from pipelines.source.wire import Answer, Call

    base = declare("http://api.test").model_dump()
    source = SourceDeclaration.model_validate({**base, **declared})
    usable = usable_statuses(source.conditional, source.errors)
    call = Call("GET", "http://api.test/items/a", CIMultiDictProxy(CIMultiDict()))
    for status in range(100, 600):
        for headers, body in [({}, b""), ({"location": "/x", "retry-after": "1"}, b'{"id": "a"}')]:
            for sent_conditional in (False, True):
                answer = Answer(call, status, CIMultiDict(headers), body)
                found = judge(answer, source.conditional, sent_conditional, source.errors)
                if status in usable:
                    assert found == (None, ""), (status, found)
    # a declaration cannot make a 2xx a failure (error statuses are 400-599, not-modified 3xx)
    assert usable == set(range(200, 300))
