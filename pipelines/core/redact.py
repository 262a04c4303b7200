"""Secrets never reach the dead letter: a reflected token, a password in a URL."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from pipelines.core.errors import safe_headers
from pipelines.core.urls import strip_userinfo

MASK = "[redacted]"
MIN_SECRET = 4  # shorter values would garble ordinary text; no real credential is that short


def url_secrets(url: str | None) -> list[str]:
    """The password of ``url`` (as written and decoded) and its basic-auth header value."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if parts.password is None:
        return []
    user, password = unquote(parts.username or ""), unquote(parts.password)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [parts.password, password, basic]


class Redactor:
    """Scrubs the values of known secrets from text, headers and URLs."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self.secrets = sorted(found, key=len, reverse=True)  # the longest first: one may contain another
        self._encoded = [(s.encode(), MASK.encode()) for s in self.secrets]

    def bytes(self, body: bytes) -> bytes:
        """A response body without our secrets (an API that reflects request headers would
        otherwise have the token stored with the record). A substring search per secret: cheap."""
        for secret, mask in self._encoded:
            if secret in body:
                body = body.replace(secret, mask)
        return body

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def url(self, value: str) -> str:
        return self.text(strip_userinfo(value))

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {k: self.text(v) for k, v in safe_headers(dict(headers)).items()}


_scrubber = Redactor()
_factory = logging.getLogRecordFactory()


def register(secrets: Iterable[str | None]) -> None:
    """Every secret value this process holds (the settings', and each credential a source's
    declaration names, once read) joins the one scrubber that everything stored or logged
    passes through: every log line of the process, whoever logs it (httpx logs each request's
    URL, httpcore at DEBUG each response's headers; a record is scrubbed when it is made, before
    any handler formats it), every statement's parameters written to the warehouse
    (``warehouse/connect.py``), the metadata and failures handed to Dagster (``scrub``)."""
    global _scrubber
    new = [s for s in secrets if s and len(s) >= MIN_SECRET and s not in _scrubber.secrets]
    if new:
        _scrubber = Redactor([*_scrubber.secrets, *new])
    logging.setLogRecordFactory(_scrubbing_factory)


def scrub(value):
    """``value`` (text, bytes, or JSON-shaped lists and dicts of them) without any secret the
    process knows."""
    scrubber = _scrubber
    if not scrubber.secrets:
        return value
    if isinstance(value, str):
        return scrubber.text(value)
    if isinstance(value, bytes):
        return scrubber.bytes(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def known_secrets() -> int:
    """How many secret values the process's scrubber knows."""
    return len(_scrubber.secrets)


def _scrubbing_factory(*args, **kwargs) -> logging.LogRecord:
    record = _factory(*args, **kwargs)
    if _scrubber.secrets:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to complain
            return record
        clean = _scrubber.text(message)
        if clean != message:
            record.msg, record.args = clean, ()
    return record


def header_problem(secret: str) -> str | None:
    """Why no HTTP header can carry ``secret`` as given (whitespace, a control or non-ASCII
    character, and where), or None; never the value itself."""
    bad = next((c for c in secret if c.isspace() or not c.isprintable() or ord(c) > 126), None)
    if bad is None:
        return None
    what = "whitespace" if bad.isspace() else "a control or non-ASCII character"
    return f"holds {what} (at position {secret.index(bad)} of {len(secret)}); an HTTP header cannot carry it as given"
