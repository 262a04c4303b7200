"""Ids are data, never URL syntax; credentials never travel in a stored or logged URL.

``item_path`` puts an id into a path template as ONE percent-encoded segment: ``/``, ``?``,
``#``, ``%`` and dot segments (``.``, ``..``) in an id cannot reach another URL. ``strip_userinfo``
and ``mask_url`` keep passwords out of what is stored and what is said.
"""

from __future__ import annotations

import string
from urllib.parse import quote, urlsplit, urlunsplit

PLACEHOLDER = "id"


def id_segment(rid: str) -> str:
    """``rid`` as one path segment: every reserved character percent-encoded, and a dot segment
    (``.`` or ``..``, which clients and servers resolve away) spelled ``%2E``."""
    # nothing to encode (most ids): quote() costs more than the request's own bookkeeping
    if rid.isascii() and rid.isalnum():
        return rid
    segment = quote(rid, safe="")
    if segment and not segment.strip("."):
        segment = segment.replace(".", "%2E")
    return segment


def item_path(template: str, rid: str) -> str:
    return template.replace("{" + PLACEHOLDER + "}", id_segment(rid))


def list_query(params: dict[str, list[str]], separator: str = ",") -> bytes:
    """A query string whose list values are joined by a literal ``separator`` and whose items
    are each percent-encoded (a separator inside an item travels as ``%2C``)."""
    pairs = (
        f"{quote(name, safe='')}={separator.join(quote(v, safe='') for v in values)}" for name, values in params.items()
    )
    return "&".join(pairs).encode("ascii")


def placeholders(template: str) -> list[str]:
    """The ``{names}`` of a path template (a format spec or conversion counts as a name)."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is not None:
            names.append(name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else ""))
    return names


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (what is stored of a URL: dead letter, alerts)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def mask_url(url: str | None) -> str:
    """``url`` with its password as ``***`` (what a message may say of a configured URL)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[unparseable URL]"
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"))
