import pytest

from pipelines.source.client import retry_after_seconds
from pipelines.source.errors import ErrorClass, SourceError, classify_status, safe_headers


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
