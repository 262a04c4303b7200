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
        (401, ErrorClass.PERMANENT),
        (403, ErrorClass.PERMANENT),
        (422, ErrorClass.PERMANENT),
    ],
)
def test_status_classes(status, expected):
    assert classify_status(status) == expected


def test_secret_headers_are_masked():
    headers = {"Authorization": "Bearer s3cret", "Set-Cookie": "a=b", "ETag": '"3"'}
    assert safe_headers(headers) == {"Authorization": "[redacted]", "Set-Cookie": "[redacted]", "ETag": '"3"'}


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0.5", 0.5), (None, 1.0), ("garbage", 1.0), ("-4", 0.0)])
def test_retry_after_seconds(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_is_in_the_future():
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2099 07:28:00 GMT") > 1000


def test_source_error_says_what_and_where():
    err = SourceError(ErrorClass.PERMANENT, "HTTP 403", url="http://api/items/x", status=403)
    assert str(err) == "permanent: HTTP 403 (GET http://api/items/x -> 403)"
