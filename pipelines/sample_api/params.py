"""Query parameters both profiles of the sample API read the same way."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def fields_param(request: Request) -> list[str] | None:
    raw = request.query_params.get("fields")
    return [f for f in raw.split(",") if f] if raw else None


def since_param(request: Request, param: str) -> datetime | Response | None:
    """A listing's change filter: items changed at or after this time (ISO 8601); a response
    when it is malformed."""
    raw = request.query_params.get(param)
    if not raw:
        return None
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        return JSONResponse({"error": f"{param} must be an ISO 8601 time"}, status_code=400)
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def embeds(request: Request, param: str, what: str) -> bool:
    """Whether the request asks for ``what`` to be embedded in each item (``?embed=details``,
    ``?include=metafields``; a list separated by commas)."""
    raw = request.query_params.get(param, "")
    return what in [part.strip() for part in raw.split(",")]
